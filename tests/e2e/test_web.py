"""``csms.web.mount_web``: what the CSMS serves of the driver page, without a browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from config.settings import load_settings
from csms.web import CONTENT_SECURITY_POLICY, mount_web


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    mount_web(app, load_settings())

    @app.get("/api/v1/ping")
    async def ping() -> dict[str, str]:  # a route added after the page: not shadowed
        return {"pong": "yes"}

    return TestClient(app)


@pytest.mark.parametrize("path", ["/", "/c/CP-1", "/c/CP-1?evse=2", "/operator"])
def test_pages_are_html_with_a_strict_policy(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "<main" in response.text or "operator" in response.text


def test_static_folders_and_the_decoder_come_from_our_server(client: TestClient) -> None:
    app_js = client.get("/js/app.js")
    assert app_js.status_code == 200
    assert "javascript" in app_js.headers["content-type"]
    assert client.get("/i18n/zh-CN.json").json()["nav.wallet"] == "钱包"
    scanner = client.get("/js/scanner.js").text
    assert '"/vendor/zxing-wasm/es/reader/index.js"' in scanner
    assert "http" not in scanner.split("prepareZXingModule(")[1].split(");")[0]  # no CDN
    wasm = client.get("/vendor/zxing-wasm/reader/zxing_reader.wasm")
    assert wasm.status_code == 200
    assert wasm.headers["content-type"] == "application/wasm"
    assert wasm.content[:4] == b"\0asm"
    assert client.get("/vendor/zxing-wasm/es/reader/index.js").status_code == 200


def test_nothing_else_of_the_folder_is_served(client: TestClient) -> None:
    assert client.get("/package.json").status_code == 404
    assert client.get("/node_modules/zxing-wasm/package.json").status_code == 404
    assert client.get("/js/../package.json").status_code == 404
    assert client.get("/c/" + "x" * 65).status_code == 404
    assert client.get("/api/v1/ping").json() == {"pong": "yes"}


def test_without_the_page_nothing_is_mounted(tmp_path: Path) -> None:
    app = FastAPI()
    mount_web(app, load_settings(), root=tmp_path)
    assert TestClient(app).get("/").status_code == 404


def test_a_static_folder_the_page_lacks_answers_404(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<main></main>")
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "app.js").write_text("export {};")
    app = FastAPI()
    mount_web(app, load_settings(), root=tmp_path)
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/js/app.js").status_code == 200
    assert client.get("/img/logo.png").status_code == 404
    assert client.get("/css/page.css").status_code == 404


def test_the_icon_is_served_and_linked_from_every_page(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\0\0\1\0"  # an ICO file's header
    for page in ("/", "/operator"):
        assert '<link rel="icon" href="/favicon.ico"' in client.get(page).text


def test_the_accessibility_checker_is_not_shipped(client: TestClient) -> None:
    """axe-core is a development package: only the browser tests inject it."""
    assert client.get("/vendor/axe-core/axe.min.js").status_code == 404
    assert client.get("/node_modules/axe-core/axe.min.js").status_code == 404
    assert "axe" not in client.get("/").text
