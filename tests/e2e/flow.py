"""Steps of the driver's journey that several browser tests share."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import BrowserContext, Page

from tests.e2e.conftest import Api, until

TOKEN_KEY = "qrcharge.token"


def signed_in_context(browser: Any, driver: dict[str, Any], **options: Any) -> BrowserContext:
    """A browser context whose page already holds the driver's access token."""
    context: BrowserContext = browser.new_context(**options)
    context.add_init_script(
        f"if (!localStorage.getItem('{TOKEN_KEY}')) "
        f"localStorage.setItem('{TOKEN_KEY}', {driver['token']!r});"
    )
    return context


def order_energy(page: Page, kwh: str = "1") -> str:
    """On the charger screen: asks for ``kwh`` and returns the order id of the start QR."""
    page.click("#kind-energy")
    page.fill("#request-value", kwh)
    page.click("#order-button")
    page.wait_for_selector("#start-qr[src]")
    page.wait_for_function("document.querySelector('#start-qr').naturalWidth > 0")
    return page.url.rsplit("/", 1)[-1]


def charge_offline(api: Api, charger_id: str, start_qr_png: bytes, *, min_wh: int = 1) -> bytes:
    """The charger (EV plugged; online or not) scans the start QR, delivers at least
    ``min_wh``, the EV is unplugged; returns the settlement QR from the charger's screen."""
    answer = api.control(charger_id, "POST", "/camera", content=start_qr_png).json()
    assert answer["accepted"] is True, answer

    until(lambda: api.control(charger_id, "GET", "/state").json()["transactions"], timeout=10)
    start_wh = api.control(charger_id, "GET", "/state").json()["evses"][0]["register_wh"]
    until(
        lambda: (
            api.control(charger_id, "GET", "/state").json()["evses"][0]["register_wh"]
            >= start_wh + min_wh
        ),
        timeout=20,
    )
    api.control(charger_id, "POST", "/evses/1/unplug")
    display = until(
        lambda: (
            (d := api.control(charger_id, "GET", "/display").json())["qr_kind"] == "settlement"
            and d
        )
    )
    assert display["qr_text"].count(".") == 2
    return api.control(charger_id, "GET", "/display/qr.png").content


def link(api: Api, charger_id: str, *, up: bool) -> None:
    """Cuts or restores the charger's network and waits until the CSMS sees it."""
    api.control(charger_id, "POST", f"/link/{'up' if up else 'down'}")
    until(
        lambda: api.admin_get(f"/api/v1/admin/chargers/{charger_id}")["connected"] is up,
        timeout=30,
    )
