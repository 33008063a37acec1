"""What the CSMS serves for the installable, offline page: the service worker at the root with
the list of files it keeps, and the web app manifest with locally made icons."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from config.settings import load_settings
from csms.web import CLIENT_WEB, mount_web, precache


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    mount_web(app, load_settings())
    return TestClient(app)


def _precache(text: str) -> dict[str, object]:
    head = text.splitlines()[0]
    assert head.startswith("self.PRECACHE = ") and head.endswith(";")
    data: dict[str, object] = json.loads(head.removeprefix("self.PRECACHE = ")[:-1])
    return data


def test_the_worker_is_served_at_the_root_with_what_it_keeps(client: TestClient) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["service-worker-allowed"] == "/"
    assert response.headers["cache-control"] == "no-cache"
    assets = _precache(response.text)["assets"]
    assert isinstance(assets, list)
    for url in (
        "/",
        "/js/app.js",
        "/js/keep.js",
        "/js/screens/settle.js",
        "/css/app.css",
        "/i18n/zh-CN.json",
        "/manifest.webmanifest",
        "/img/icon-192.png",
        "/vendor/zxing-wasm/es/reader/index.js",
        "/vendor/zxing-wasm/es/share.js",
        "/vendor/zxing-wasm/reader/zxing_reader.wasm",
    ):
        assert url in assets, url
        assert client.get(url).status_code == 200, url  # everything listed is really served
    assert not [url for url in assets if url.startswith("http")]  # nothing from elsewhere
    assert not [url for url in assets if url.startswith("/c/")]  # those are "/", kept once


def test_the_version_follows_the_files(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<main></main>")
    (tmp_path / "sw.js").write_text("// worker")
    (tmp_path / "js").mkdir()
    script = tmp_path / "js" / "app.js"
    script.write_text("export {};")
    version, urls = precache(tmp_path)
    assert urls == ["/", "/js/app.js"]
    assert precache(tmp_path)[0] == version
    script.write_text("export const changed = 1;")
    os.utime(script, ns=(1, 1))
    assert precache(tmp_path)[0] != version


def test_the_manifest_and_its_icons(client: TestClient) -> None:
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["start_url"] == "/" and manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        served = client.get(icon["src"])
        assert served.status_code == 200, icon
        assert len(served.content) < 4096  # small files made here, in the repository
        if icon["type"] == "image/png":
            assert served.content[:4] == b"\x89PNG"
    for page in ("index.html", "operator.html"):
        assert (
            '<link rel="manifest" href="/manifest.webmanifest">' in (CLIENT_WEB / page).read_text()
        )


def test_without_a_worker_file_there_is_none(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<main></main>")
    app = FastAPI()
    mount_web(app, load_settings(), root=tmp_path)
    client = TestClient(app)
    assert client.get("/sw.js").status_code == 404
    assert client.get("/manifest.webmanifest").status_code == 404
