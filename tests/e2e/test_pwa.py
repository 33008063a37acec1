"""The driver page with no network at the charger (Playwright's offline mode), in Chromium.

The driver orders online, then the phone loses the network: a reload still shows the start QR,
its validity, limits and prices (kept in IndexedDB, the page's files in the service worker's
cache), and tells what the charger's screen shows once charging has started; "Charging has
started" puts the code away. The charger (offline too) charges and shows its settlement QR, the
phone's camera scans it with no network: "saved on this phone, will be sent". A reload offline
loses nothing; once the network is back the settlement is sent by itself and the payment
summary appears.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.camera import blank_y4m, write_y4m
from tests.e2e.conftest import PHONE, ROOT, Api, Demo, shot, until
from tests.e2e.flow import link, order_energy, signed_in_context

CHARGER = "DEMO-01"
TOP_UP = 10_000


def message(lang: str, key: str, **values: str) -> str:
    """The page's own sentence ``key`` in ``lang`` ("en" or "zh-CN"), placeholders filled."""
    text: str = json.loads((ROOT / "client_web" / "i18n" / f"{lang}.json").read_text("utf-8"))[key]
    for name, value in values.items():
        text = text.replace(f"{{{name}}}", value)
    return text


def worker_ready(page: Page) -> None:
    """Waits until the service worker has cached the page's files and controls the page."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    until(lambda: page.evaluate("() => navigator.serviceWorker.controller !== null"))


def kept_order(page: Page, order_id: str) -> dict[str, Any] | None:
    kept: dict[str, Any] | None = page.evaluate(
        "id => self.qrchargeKeep.order(id).then((o) => o || null)", order_id
    )
    return kept


@pytest.mark.parametrize(("lang", "via"), [("en", "page"), ("zh-CN", "worker")])
def test_offline_start_qr_and_settlement_sent_when_the_network_returns(
    lang: str, via: str, demo: Demo, api: Api, launch: Callable[..., Browser], tmp_path: Path
) -> None:
    suffix = "" if lang == "en" else "-zh"
    driver = api.new_driver(top_up=TOP_UP)
    camera = blank_y4m(tmp_path / "camera.y4m")  # the settlement is put in front of it later
    context = signed_in_context(launch(camera), driver, viewport=PHONE, locale=lang)
    page = context.new_page()
    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#request-form")
    worker_ready(page)
    order_id = order_energy(page, "1")
    until(lambda: (kept_order(page, order_id) or {}).get("svg"))
    assert api.order(driver, order_id)["hold_amount"] == 5_000

    link(api, CHARGER, up=False)
    api.control(CHARGER, "POST", "/evses/1/plug")
    try:
        # the underground car park: no network for the phone either
        context.set_offline(True)
        page.reload()
        page.wait_for_selector("#start-qr[src]")
        until(lambda: page.evaluate("() => document.querySelector('#start-qr').naturalWidth > 0"))
        page.wait_for_selector("#offline-help")
        screen_text = "Charging on EVSE 1"
        assert message(lang, "start.offline_screen", text=screen_text) in page.inner_text(
            "#offline-help"
        )
        assert "1.00 kWh" in page.inner_text("#start-limits")
        assert "50.00 CNY" in page.inner_text("#start-limits")
        assert "1.00 CNY/" in page.inner_text("#start-tariff")  # per kWh, in either language
        assert page.is_visible("#countdown")
        shot(page, f"driver-start-qr-offline{suffix}-360", doc=True)
        start_png = page.locator("#start-qr").screenshot()

        # the charger reads the code and starts; its screen says what the page announced
        answer = api.control(CHARGER, "POST", "/camera", content=start_png).json()
        assert answer["accepted"] is True, answer
        until(lambda: api.control(CHARGER, "GET", "/state").json()["transactions"], timeout=10)
        assert api.control(CHARGER, "GET", "/display").json()["text"] == screen_text

        page.click("#charging-started")
        page.wait_for_selector("#session")
        assert not page.is_visible("#start-qr")
        assert message(lang, "start.put_away_what") in page.inner_text("#session")
        page.reload()  # the choice is kept on the phone too
        page.wait_for_selector("#session")
        shot(page, f"driver-session-offline{suffix}-360", doc=True)
        page.goto(f"{demo.base_url}/#/")  # the home page lists what this phone keeps
        page.click(f"#on-this-phone a[data-order='{order_id}']")
        page.click("#show-start-qr")
        page.wait_for_selector("#start-qr[src]")  # still retrievable
        page.click("#charging-started")

        start_wh = api.control(CHARGER, "GET", "/state").json()["evses"][0]["register_wh"]
        until(
            lambda: (
                api.control(CHARGER, "GET", "/state").json()["evses"][0]["register_wh"]
                >= start_wh + 10
            )
        )
        api.control(CHARGER, "POST", "/evses/1/unplug")
        until(lambda: api.control(CHARGER, "GET", "/display").json()["qr_kind"] == "settlement")
        write_y4m(api.control(CHARGER, "GET", "/display/qr.png").content, camera)

        # scanned with no network: kept on the phone
        page.click("#to-settle")
        page.wait_for_selector("#settle-saved", timeout=20_000)
        saved = page.inner_text("#settle-saved")
        assert message(lang, "settle.saved_title") in saved
        assert message(lang, "settle.saved_what") in saved
        shot(page, f"driver-settle-saved{suffix}-360", doc=True)
        assert api.order(driver, order_id)["status"] == "created"  # the CSMS knows nothing yet

        # closed and opened again, still offline: nothing lost, the camera not needed
        tags = page.evaluate("navigator.serviceWorker.ready.then((r) => r.sync.getTags())")
        assert tags == ["settlements"]  # Background Sync asked for

        # closed and opened again, still offline: nothing lost, the camera not needed
        page.close()
        page = context.new_page()
        page.goto(f"{demo.base_url}/#/settle/{order_id}")
        page.wait_for_selector("#settle-saved")
        assert page.locator("#camera-status").inner_text() == ""  # the camera did not start

        if via == "worker":
            # the page closed, the network back: the service worker sends it on its own (what
            # its "sync" event runs; Chromium fires that event by its own network state, which
            # the emulated offline mode does not change)
            page.close()
            context.set_offline(False)
            worker = context.service_workers[0]
            worker.evaluate("deliverKept()")
            assert api.order(driver, order_id)["status"] == "settled"
            page = context.new_page()
            page.goto(f"{demo.base_url}/#/settle/{order_id}")
        else:
            context.set_offline(False)  # the network returns: the open page sends it at once
        page.wait_for_selector("#payment-summary", timeout=30_000)
        paid = api.order(driver, order_id)
        assert paid["status"] == "settled"
        assert paid["amount"] >= 201  # the 2.00 CNY fee and at least 10 Wh at 1.00 CNY/kWh
        assert f"{paid['amount'] / 100:.2f} CNY" in page.inner_text("#payment-total")
        kept = page.evaluate("self.qrchargeKeep.settlements()")
        assert [e for e in kept if e["state"] == "waiting"] == []
    finally:
        context.set_offline(False)
        link(api, CHARGER, up=True)
    # the charger's own copy arrives later over OCPP: still one settlement, charged once
    page.click("#pay-button")
    page.wait_for_selector("#receipt")
    detail = api.admin_get(f"/api/v1/admin/orders/{order_id}")
    assert len(detail["settlements"]) == 1
    assert api.wallet(driver)["balance"] == TOP_UP - paid["amount"]


def test_the_worker_serves_every_page_offline(demo: Demo, launch: Callable[..., Browser]) -> None:
    """The identification QR's link and the home page open with no network, and the scanner's
    decoder (zxing-wasm and its .wasm) comes from the cache."""
    context = launch().new_context(viewport=PHONE, locale="en-US")
    page = context.new_page()
    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#request-form")
    worker_ready(page)
    manifest = page.evaluate("document.querySelector('link[rel=manifest]').href")
    assert manifest.endswith("/manifest.webmanifest")
    context.set_offline(True)
    try:
        page.goto(f"{demo.base_url}/c/DEMO-02?evse=1")
        page.wait_for_selector("#charger-error")  # the page, not the browser's error
        page.goto(f"{demo.base_url}/")
        page.wait_for_selector("#scan-charger")
        decoded = page.evaluate(
            """async () => {
              const scanner = await import("/js/scanner.js");
              const canvas = document.createElement("canvas");
              canvas.width = canvas.height = 8;
              const blob = await new Promise((r) => canvas.toBlob(r));
              return (await scanner.decodeImage(blob)).length;
            }"""
        )
        assert decoded == 0  # the decoder loaded and ran offline
    finally:
        context.set_offline(False)
