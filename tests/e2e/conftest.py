"""Fixtures of the real-browser tests: the running demo, Chromium, and API helpers.

The whole system runs as ``qrcharge demo`` in a subprocess (CSMS on SQLite in tmp, simulated
chargers with control APIs, free ports); Playwright drives Debian's ``/usr/bin/chromium``
(installed by ``scripts/setup-browser``; ``playwright install`` is never used) with a fake
camera that plays a Y4M file made from a QR image.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Playwright, ViewportSize, sync_playwright

from tests.e2e.camera import blank_y4m

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
DOC_IMAGES = ROOT / "docs" / "img"
STARTUP_TIMEOUT_S = 60.0
BASE_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
]
PHONE: ViewportSize = {"width": 360, "height": 740}
# the seller and the tax on the demo's receipts (docs/operator-guide.md, "Receipts and tax")
RECEIPT_SETTINGS = {
    "QRCHARGE_OPERATOR_NAME": "Harbour Parking Charging Ltd.",
    "QRCHARGE_OPERATOR_ADDRESS": "1 Quay Road, Shanghai 200000",
    "QRCHARGE_OPERATOR_TAX_ID": "91310000MA1FL0XX1X",
    "QRCHARGE_TAX_RATE": "0.13",
}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


@dataclass(frozen=True)
class Demo:
    """The running ``qrcharge demo``: its URLs and its chargers (id -> info dict)."""

    info: dict[str, Any]

    @property
    def base_url(self) -> str:
        return str(self.info["base_url"])

    @property
    def admin_key(self) -> str:
        return str(self.info["admin_api_key"])

    def charger(self, charger_id: str) -> dict[str, Any]:
        return next(c for c in self.info["chargers"] if c["id"] == charger_id)


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run scripts/setup-browser (as root)")
    if not (ROOT / "client_web" / "node_modules" / "zxing-wasm").is_dir():
        pytest.fail("client_web/node_modules is missing: run scripts/setup-browser")
    workdir = tmp_path_factory.mktemp("demo")
    info_file = workdir / "info.json"
    log = (workdir / "demo.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "qrcharge_cli", "demo", "--port", "0", "--chargers", "4",
         "--data-dir", str(workdir / "data"), "--info-file", str(info_file)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "QRCHARGE_CP_METER_INTERVAL_S": "5", **RECEIPT_SETTINGS},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not info_file.exists() or not info_file.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"qrcharge demo did not start:\n{(workdir / 'demo.log').read_text()}")
            time.sleep(0.1)
        yield Demo(json.loads(info_file.read_text()))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Package scope: the sync API keeps an event loop running in the main thread, which
    must be gone before the test directories after this one call ``asyncio.run``."""
    with sync_playwright() as p:
        yield p


class _SharedBrowser:
    """The package's Chromium with the blank camera and the default flags, launched on first
    use: most tests need no other, and a test's isolation is its own browser contexts
    (cookies, storage, service workers, permissions), which it closes when it ends."""

    def __init__(self, playwright: Playwright, video: Path) -> None:
        self.playwright = playwright
        self.video = video
        self.browser: Browser | None = None

    def get(self) -> Browser:
        if self.browser is None:
            args = [*BASE_ARGS, f"--use-file-for-fake-video-capture={self.video}"]
            args.append("--use-fake-ui-for-media-stream")
            self.browser = self.playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        return self.browser


@pytest.fixture(scope="package")
def shared_browser(
    playwright: Playwright, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_SharedBrowser]:
    shared = _SharedBrowser(playwright, blank_y4m(tmp_path_factory.mktemp("camera") / "blank.y4m"))
    yield shared
    if shared.browser is not None:
        shared.browser.close()


@pytest.fixture
def launch(
    playwright: Playwright, shared_browser: _SharedBrowser, tmp_path: Path
) -> Iterator[Callable[..., Browser]]:
    """launch(camera=Path|None, allow_camera=True, extra_args=()) -> a Chromium with that
    fake camera. Without arguments: the package's shared Chromium (its contexts are closed
    after the test; a launch takes seconds on a loaded machine), else a Chromium of its own."""
    browsers: list[Browser] = []
    shared: list[Browser] = []

    def start(
        camera: Path | None = None, *, allow_camera: bool = True, extra_args: tuple[str, ...] = ()
    ) -> Browser:
        if camera is None and allow_camera and not extra_args:
            shared[:] = [shared_browser.get()]
            return shared[0]
        video = camera or blank_y4m(tmp_path / f"blank-{len(browsers)}.y4m")
        args = [*BASE_ARGS, f"--use-file-for-fake-video-capture={video}", *extra_args]
        if allow_camera:
            args.append("--use-fake-ui-for-media-stream")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        browsers.append(browser)
        return browser

    yield start
    for browser in shared:
        for context in browser.contexts:
            context.close()
    for browser in browsers:
        browser.close()


class Api:
    """The demo's HTTP APIs as a test uses them: driver, operator and charger control."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.http = httpx.Client(base_url=demo.base_url, timeout=20.0)
        self.admin = {"Authorization": f"Bearer {demo.admin_key}"}

    def new_charger(self, prefix: str = "E2E-O") -> str:
        """A fresh charger (unique id) with one EVSE, registered through the operator API."""
        charger_id = f"{prefix}-{uuid.uuid4().hex[:6].upper()}"
        made = self.http.post(
            "/api/v1/admin/chargers",
            json={"id": charger_id, "password": "e2e-charger-pass", "evses": 1},
            headers=self.admin,
        )
        assert made.status_code == 201, made.text
        return charger_id

    def new_driver(self, *, top_up: int = 0, fixed_fee: int | None = 20_000) -> dict[str, Any]:
        """A fresh driver (unique email), with a personal billing model (2.00 CNY per session,
        1.00/kWh) so even a short session costs a visible amount."""
        email = f"e2e-{uuid.uuid4().hex[:10]}@example.org"
        password = "e2e-password-1"
        user = self._ok(
            self.http.post("/api/v1/users", json={"email": email, "password": password})
        )
        token = self._ok(
            self.http.post("/api/v1/token", data={"username": email, "password": password})
        )["access_token"]
        if fixed_fee is not None:
            model_id = f"E2E-{uuid.uuid4().hex[:8]}"
            self._ok(self.http.post("/api/v1/admin/billing-models", headers=self.admin, json={
                "id": model_id, "currency": "CNY", "fixed_fee": fixed_fee,
                "energy_price": 10_000, "time_price": 3_000, "cap": 5_000,
            }))  # fmt: skip
            self._ok(self.http.post(
                f"/api/v1/admin/billing-models/{model_id}/assignments",
                headers=self.admin, json={"user_id": user["id"]},
            ))  # fmt: skip
        driver = {"email": email, "password": password, "token": token, "id": user["id"]}
        if top_up:
            self._ok(self.http.post(
                "/api/v1/me/wallet/top-ups", json={"amount": top_up}, headers=self.bearer(driver),
            ))  # fmt: skip
        return driver

    @staticmethod
    def bearer(driver: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {driver['token']}"}

    def wallet(self, driver: dict[str, Any]) -> dict[str, Any]:
        wallet: dict[str, Any] = self._ok(
            self.http.get("/api/v1/me/wallet", headers=self.bearer(driver))
        )
        return wallet

    def order(self, driver: dict[str, Any], order_id: str) -> dict[str, Any]:
        order: dict[str, Any] = self._ok(
            self.http.get(f"/api/v1/orders/{order_id}", headers=self.bearer(driver))
        )
        return order

    def admin_get(self, path: str, **params: Any) -> Any:
        return self._ok(self.http.get(path, headers=self.admin, params=params))

    def control(self, charger_id: str, method: str, path: str, **kw: Any) -> httpx.Response:
        url = self.demo.charger(charger_id)["control_url"] + path
        response = httpx.request(method, url, timeout=20.0, **kw)
        response.raise_for_status()
        return response

    @staticmethod
    def _ok(response: httpx.Response) -> Any:
        assert response.status_code < 300, f"{response.request.url}: {response.text}"
        return response.json() if response.content else None


@pytest.fixture
def api(demo: Demo) -> Iterator[Api]:
    client = Api(demo)
    yield client
    client.http.close()


def until(check: Callable[[], Any], *, timeout: float = 30.0, every: float = 0.2) -> Any:
    """Polls ``check`` until it returns something truthy (then returns it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def shot(page: Any, name: str, *, doc: bool = False) -> Path:
    """Saves a full-page screenshot under test-artifacts/e2e; with ``doc`` and
    ``QRCHARGE_DOC_SCREENSHOTS=1`` also under docs/img (the guides' pictures)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if doc and os.environ.get("QRCHARGE_DOC_SCREENSHOTS") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        (DOC_IMAGES / f"{name}.png").write_bytes(path.read_bytes())
    return path


def record_timing(name: str, seconds: float) -> None:
    """Keeps a measured duration in test-artifacts/e2e/timings.json (for the docs)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "timings.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    timings[name] = round(seconds, 2)
    path.write_text(json.dumps(timings, indent=2, sort_keys=True))
