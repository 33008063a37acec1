"""A real install: the wheel built from this tree, installed into a fresh virtual environment
outside the checkout, serves the driver page, the operator page, the camera decoder and the
API documentation with all their assets, and migrates its database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
SOURCES = ("qr_extension", "ocpp_rpc", "csms", "charge_point", "config", "demo", "client_web")
FILES = ("pyproject.toml", "README.md", "qrcharge_cli.py")


def _copy_sources(into: Path) -> None:
    """What a release build sees: the packages and, as scripts/setup-browser leaves it, the
    decoder's npm files (nothing else of node_modules, no caches)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
    for name in SOURCES:
        shutil.copytree(ROOT / name, into / name, ignore=skip)
    for name in FILES:
        shutil.copy2(ROOT / name, into / name)
    decoder = ROOT / "client_web" / "node_modules" / "zxing-wasm" / "dist"
    assert decoder.is_dir(), "run scripts/setup-browser: the page's decoder is missing"
    shutil.copytree(decoder, into / "client_web" / "node_modules" / "zxing-wasm" / "dist")


def _run(*cmd: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_wheel_installed_elsewhere_serves_everything(tmp_path: Path) -> None:
    src, dist, venv = tmp_path / "src", tmp_path / "dist", tmp_path / "venv"
    _copy_sources(src)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", dist, src, cwd=tmp_path)  # fmt: skip
    (wheel,) = dist.glob("qrcharge-*.whl")
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    where = _run(venv / "bin" / "python", "-c", "import csms.web; print(csms.web.CLIENT_WEB)",
                 cwd=tmp_path)  # fmt: skip
    assert Path(where.strip()).is_relative_to(venv)  # the installed copy, not this checkout

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QRCHARGE_", "PYTHONPATH"))}
    server = subprocess.Popen(
        [venv / "bin" / "qrcharge", "csms", "--port", str(port), "--data-dir", tmp_path / "data",
         "--log-level", "warning"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "did not start"
            time.sleep(0.2)
        pages = {
            "/": "<main",
            "/operator": "operator",
            "/c/CP-1?evse=1": "<main",
            "/js/app.js": "import",
            "/js/screens/settle.js": "export",
            "/css/app.css": "{",
            "/i18n/zh-CN.json": "{",
            "/js/operator/commands.js": "export",
            "/i18n/operator.zh-CN.json": "{",
            "/docs": "/docs-assets/swagger-ui-bundle.js",
            "/redoc": "/docs-assets/redoc.standalone.js",
            "/docs-assets/swagger-ui-bundle.js": "SwaggerUIBundle",
            "/docs-assets/redoc.standalone.js": "Redoc",
            "/openapi.json": '"openapi"',
        }
        for path, expected in pages.items():
            r = httpx.get(base + path)
            assert r.status_code == 200 and expected in r.text, (path, r.status_code)
        page = httpx.get(f"{base}/").text
        assert "cdn." not in page and "jsdelivr" not in httpx.get(f"{base}/docs").text
        decoder = sorted((src / "client_web/node_modules/zxing-wasm/dist").rglob("*.wasm"))
        assert decoder
        rel = decoder[0].relative_to(src / "client_web/node_modules/zxing-wasm/dist")
        assert httpx.get(f"{base}/vendor/zxing-wasm/{rel}").status_code == 200
    finally:
        server.terminate()
        server.wait(30)
