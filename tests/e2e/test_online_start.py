"""A charger without a camera, online: the page asks the CSMS to start the order remotely
(RemoteStartTransaction / RequestStartTransaction with the order id); while the charger is
offline the page says that this cannot work. The order then settles from the OCPP data and
the page moves on to the payment by itself."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Browser

from tests.e2e.conftest import PHONE, Api, Demo, until
from tests.e2e.flow import link, order_energy, signed_in_context

CHARGER = "DEMO-04"


def test_remote_start_from_the_page(demo: Demo, api: Api, launch: Callable[..., Browser]) -> None:
    driver = api.new_driver(top_up=10_000)
    page = signed_in_context(launch(), driver, viewport=PHONE, locale="en-US").new_page()
    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#tariff >> text=Your prices")
    order_id = order_energy(page)
    api.control(CHARGER, "POST", "/evses/1/plug")

    link(api, CHARGER, up=False)
    try:
        page.click("#remote-start")
        page.wait_for_selector("#notice >> text=could not be started over the network")
    finally:
        link(api, CHARGER, up=True)

    page.click("#remote-start")
    page.wait_for_selector("#order-state >> text=starting your charge")
    until(lambda: api.order(driver, order_id)["status"] == "started", timeout=20)
    # the live session takes the start QR's place
    page.wait_for_selector("#session >> text=has started your charge", timeout=10_000)
    assert not page.is_visible("#start-qr")
    assert not page.is_visible("#cancel-order")
    until(lambda: api.control(CHARGER, "GET", "/state").json()["evses"][0]["register_wh"] > 0)
    api.control(CHARGER, "POST", "/evses/1/unplug")
    page.wait_for_selector("#payment-summary", timeout=30_000)
    page.click("#pay-button")
    page.wait_for_selector("#receipt")
    assert api.order(driver, order_id)["status"] == "paid"
