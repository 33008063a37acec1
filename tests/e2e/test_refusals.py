"""Refusals as the driver sees them in the page: an expired start QR, a settlement of another
driver, insufficient funds, a denied camera (then a photo upload, a tampered photo first), and
an order whose answer the network lost (the repeat finds it: no second order, no second hold).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import APIResponse, Browser, Route

from qr_extension import render_png
from tests.e2e.camera import write_y4m
from tests.e2e.conftest import PHONE, Api, Demo, shot, until
from tests.e2e.flow import charge_offline, order_energy, signed_in_context

CHARGER = "DEMO-02"


def _settlement_for(
    api: Api, demo: Demo, launch: Callable[..., Browser], driver: dict[str, Any]
) -> tuple[str, bytes]:
    """An order of ``driver`` charged on the (online) charger: (order id, settlement PNG)."""
    page = signed_in_context(launch(), driver, viewport=PHONE).new_page()
    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#tariff >> text=Your prices")
    order_id = order_energy(page)
    start_png = page.locator("#start-qr").screenshot()
    api.control(CHARGER, "POST", "/evses/1/plug")
    return order_id, charge_offline(api, CHARGER, start_png)


def test_expired_start_qr_says_so_and_offers_a_new_order(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    driver = api.new_driver(top_up=10_000)
    context = signed_in_context(launch(), driver, viewport=PHONE, locale="en-US")
    page = context.new_page()
    page.clock.install()
    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#tariff >> text=Your prices")
    order_energy(page)
    page.clock.fast_forward("14:10")
    assert "Valid for 0:" in page.inner_text("#countdown")
    page.clock.fast_forward("01:00")
    page.wait_for_selector("#start-expired")
    assert page.locator("#start-qr").count() == 0  # the expired code is not shown any more
    assert "This start code has expired." in page.inner_text("#start-expired")
    assert "Nothing was charged" in page.inner_text("#start-expired")
    shot(page, "refusal-expired-360")
    page.click("#order-again")
    page.wait_for_selector("#request-form")


def test_settlement_of_another_driver_is_accepted_without_charging_the_uploader(
    demo: Demo, api: Api, launch: Callable[..., Browser], tmp_path: Path
) -> None:
    owner = api.new_driver(top_up=10_000)
    stranger = api.new_driver(top_up=10_000)
    order_id, settlement_png = _settlement_for(api, demo, launch, owner)

    camera = write_y4m(settlement_png, tmp_path / "settlement.y4m")
    page = signed_in_context(launch(camera), stranger, viewport=PHONE).new_page()
    page.goto(f"{demo.base_url}/#/settle")
    page.wait_for_selector("#settle-not-yours", timeout=20_000)
    assert "belongs to another account" in page.inner_text("#settle-not-yours")
    shot(page, "refusal-not-yours-360")
    assert api.order(owner, order_id)["status"] in {"settled", "paid"}
    assert api.wallet(stranger)["balance"] == 10_000


def test_insufficient_funds_then_top_up_in_the_wallet(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    driver = api.new_driver(top_up=0)
    page = signed_in_context(launch(), driver, viewport=PHONE, locale="en-US").new_page()
    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#tariff >> text=Your prices")
    page.fill("#request-value", "1")
    page.click("#order-button")
    page.wait_for_selector("#notice:not([hidden])")
    assert "Not enough money in your wallet" in page.inner_text("#notice")
    shot(page, "refusal-insufficient-funds-360")
    page.click("#top-up-link")
    page.wait_for_selector("#top-up-form")
    page.fill("#top-up-amount", "80")
    page.click("#top-up-button")
    page.wait_for_selector("#wallet-balance >> text=80.00 CNY")
    assert api.wallet(driver)["balance"] == 8_000
    page.go_back()
    page.wait_for_selector("#request-form")
    order_energy(page)  # 50.00 CNY hold now fits


def test_an_order_whose_answer_was_lost_is_found_again_by_the_repeat(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    driver = api.new_driver(top_up=10_000)
    page = signed_in_context(launch(), driver, viewport=PHONE, locale="en-US").new_page()
    page.goto(demo.charger(CHARGER)["page_url"])
    page.wait_for_selector("#tariff >> text=Your prices")
    keys: list[str | None] = []
    placed: list[APIResponse] = []

    def lose_the_first_answer(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        if placed:
            route.continue_()
            return
        placed.append(route.fetch())  # the CSMS places the order...
        route.abort("connectionreset")  # ...and its answer never reaches the phone

    page.route("**/api/v1/orders", lose_the_first_answer)
    page.click("#kind-energy")
    page.fill("#request-value", "1")
    page.click("#order-button")
    page.wait_for_selector("#notice >> text=No connection to the server")
    assert placed[0].status == 201
    page.reload()  # the driver reloads the page, asks for the same again and taps
    page.wait_for_selector("#tariff >> text=Your prices")
    page.click("#kind-energy")
    page.fill("#request-value", "1")
    page.click("#order-button")
    page.wait_for_selector("#start-qr[src]")
    order_id = page.url.rsplit("/", 1)[-1]
    assert order_id == placed[0].json()["id"]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    orders = api.http.get("/api/v1/orders", headers=api.bearer(driver)).json()
    assert [o["id"] for o in orders] == [order_id]
    wallet = api.http.get("/api/v1/me/wallet", headers=api.bearer(driver)).json()
    assert wallet["held"] == placed[0].json()["hold_amount"]


def test_camera_denied_then_photo_upload(
    demo: Demo, api: Api, launch: Callable[..., Browser], tmp_path: Path
) -> None:
    driver = api.new_driver(top_up=10_000)
    order_id, settlement_png = _settlement_for(api, demo, launch, driver)
    token = until(lambda: api.control(CHARGER, "GET", "/display").json()["qr_text"])
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    (tmp_path / "forged.png").write_bytes(render_png(forged))
    (tmp_path / "settlement.png").write_bytes(settlement_png)

    page = signed_in_context(
        launch(allow_camera=False), driver, viewport=PHONE, locale="en-US"
    ).new_page()
    # the order is settled already (the charger is online): its own settle screen would go
    # straight to the payment, so the driver scans from the general one
    page.goto(f"{demo.base_url}/#/settle")
    page.wait_for_selector("#camera-status[data-code=camera_denied]")
    assert "may not use your camera" in page.inner_text("#camera-status")
    shot(page, "refusal-camera-denied-360", doc=True)

    page.set_input_files("#photo-input", str(tmp_path / "forged.png"))
    page.wait_for_selector("#settle-error")
    assert page.get_attribute("#settle-error", "data-code") == "bad_signature"
    assert "changed or damaged" in page.inner_text("#settle-error")

    page.set_input_files("#photo-input", str(tmp_path / "settlement.png"))
    page.wait_for_selector("#payment-summary")
    assert order_id in page.inner_text("#payment-summary")
    page.click("#pay-button")
    page.wait_for_selector("#receipt")
