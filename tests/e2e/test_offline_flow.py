"""The whole offline flow in a real browser, on both OCPP versions.

The driver opens the charger's link, signs in, orders; the test takes the start QR from the
page and shows it to the simulated charger's camera while the charger is offline; the charger
charges and shows its settlement QR, which Chromium's fake camera feeds to the page; the
driver pays and sees the receipt. Then the charger comes back online, delivers its queued
OCPP messages and the same settlement, and the wallet shows one charge, not two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.e2e.camera import write_y4m
from tests.e2e.conftest import PHONE, Api, Demo, record_timing, shot, until
from tests.e2e.flow import charge_offline, link, order_energy

TOP_UP = 10_000  # 100.00 CNY


@pytest.mark.parametrize("charger_id", ["DEMO-03", "DEMO-04"], ids=["ocpp1.6", "ocpp2.0.1"])
def test_offline_scan_to_pay_charges_once(
    charger_id: str, demo: Demo, api: Api, launch: Callable[..., Browser], tmp_path: Path
) -> None:
    version = demo.charger(charger_id)["ocpp_version"]
    doc = version == "1.6"
    driver = api.new_driver(top_up=TOP_UP)
    link(api, charger_id, up=False)
    api.control(charger_id, "POST", "/evses/1/plug")
    try:
        browser = launch()
        context = browser.new_context(viewport=PHONE, locale="en-US")
        page = context.new_page()
        page.goto(demo.charger(charger_id)["page_url"])
        page.wait_for_selector("#request-form")
        page.click("#order-button")  # not signed in yet: leads to the sign-in screen
        page.fill("#email", driver["email"])
        page.fill("#password", driver["password"])
        page.click("#signin-submit")
        page.wait_for_selector("#tariff >> text=Your prices")
        tariff = page.inner_text("#tariff")
        assert "1.00 CNY/kWh, 0.30 CNY/hour, capped at 50.00 CNY" in tariff
        assert "Plus 2.00 CNY per charge" in tariff
        assert "Offline" in page.inner_text("main")
        shot(page, "driver-charger-360", doc=doc)

        order_id = order_energy(page, "1")
        assert "Valid for 1" in page.inner_text("#countdown")  # 15:00 -> "Valid for 14:59"
        shot(page, "driver-start-qr-360", doc=doc)
        start_png = page.locator("#start-qr").screenshot()

        settlement_png = charge_offline(api, charger_id, start_png, min_wh=12)
        order = api.order(driver, order_id)
        assert order["status"] == "started" or order["status"] == "created"  # offline: no news

        # the settlement QR from the charger's screen, through the phone's camera
        camera = write_y4m(settlement_png, tmp_path / "settlement.y4m")
        phone = launch(camera).new_context(
            viewport=PHONE, locale="en-US", storage_state=context.storage_state()
        )
        pay_page = phone.new_page()
        started = time.monotonic()
        pay_page.goto(f"{demo.base_url}/#/settle/{order_id}")
        pay_page.wait_for_selector("#payment-summary", timeout=20_000)
        record_timing(f"settlement-scan-to-summary-{version}", time.monotonic() - started)
        shot(pay_page, "driver-payment-360", doc=doc)
        paid = api.order(driver, order_id)
        amount = paid["amount"]
        assert amount >= 201  # the 2.00 fixed fee and at least 12 Wh at 1.00 CNY/kWh
        assert paid["energy_wh"] >= 12
        assert f"{paid['energy_wh'] / 1000:.2f} kWh" in pay_page.inner_text("#payment-summary")
        assert f"{amount / 100:.2f} CNY" in pay_page.inner_text("#payment-total")
        pay_page.click("#pay-button")
        pay_page.wait_for_selector("#receipt")
        assert f"{amount / 100:.2f} CNY" in pay_page.inner_text("#receipt-amount")
        shot(pay_page, "driver-receipt-360")  # the guide's receipt: test_accessibility.py
    finally:
        link(api, charger_id, up=True)

    # back online: the queued OCPP transaction and the signed settlement reach the CSMS
    def corroborated() -> bool:
        detail = api.admin_get(f"/api/v1/admin/orders/{order_id}")
        return any(len(s["sources"]) > 1 for s in detail["settlements"])

    until(corroborated, timeout=30)
    detail = api.admin_get(f"/api/v1/admin/orders/{order_id}")
    assert detail["status"] == "paid"
    assert len(detail["settlements"]) == 1
    wallet = api.wallet(driver)
    assert wallet["balance"] == TOP_UP - amount
    assert wallet["held"] == 0
    lines = [line for line in wallet["lines"] if line["order_id"] == order_id]
    assert sum(line["amount"] for line in lines) == -amount  # the order cost `amount`, once
    assert [line["kind"] for line in lines].count("hold") == 1
    payments = [p for p in api.admin_get("/api/v1/admin/payments") if p["order_id"] == order_id]
    assert [p["status"] for p in payments] == ["captured"]

    pay_page.goto(f"{demo.base_url}/#/wallet")
    pay_page.wait_for_selector("#wallet-balance")
    assert pay_page.inner_text("#wallet-balance") == f"{(TOP_UP - amount) / 100:.2f} CNY"
    assert pay_page.locator(f"#wallet-lines li[data-order='{order_id}']").count() == len(lines)
    shot(pay_page, "driver-wallet-after-360", doc=doc)
    pay_page.goto(f"{demo.base_url}/#/history")
    pay_page.wait_for_selector("#orders")
    rows = pay_page.locator(".order-row")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-status") == "paid"
    shot(pay_page, "driver-history-360", doc=doc)
