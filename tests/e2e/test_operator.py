"""The operator page: chargers online/offline, orders, settlements, reconciliation, and the
button that cuts a simulated charger's network (through its control API) and restores it."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Browser

from tests.e2e.conftest import DESKTOP, Api, Demo, shot

CHARGER = "DEMO-01"


def test_operator_sees_the_fleet_and_cuts_a_charger_off(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    driver = api.new_driver(top_up=10_000)
    created = api.http.post(
        "/api/v1/orders",
        json={"charger_id": CHARGER, "evse_id": 2, "amount": 1_500},
        headers=api.bearer(driver),
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]

    page = launch().new_context(viewport=DESKTOP, locale="en-US").new_page()
    page.goto(demo.info["operator_url"])
    page.wait_for_selector("body[data-ready]", state="attached")
    page.fill("#admin-key", "wrong-key")
    page.click("#key-form button")
    page.wait_for_selector("#notice >> text=operator key was not accepted")

    page.fill("#admin-key", demo.admin_key)
    page.click("#key-form button")
    state = f"[data-charger-state='{CHARGER}']"
    page.wait_for_selector(f"{state} >> text=online")
    for other in ("DEMO-02", "DEMO-03", "DEMO-04"):
        assert page.locator(f"tr[data-charger='{other}']").count() == 1
    page.wait_for_selector(f"tr[data-order='{order_id}']")
    assert "15.00 CNY" in page.inner_text(f"tr[data-order='{order_id}']")
    page.wait_for_selector("#reconciliation-counts .count", timeout=10_000)

    page.click(f"#cut-{CHARGER}")
    page.wait_for_selector(f"{state} >> text=offline", timeout=15_000)
    assert api.control(CHARGER, "GET", "/state").json()["link_up"] is False
    shot(page, "operator-offline-1280", doc=True)

    page.click(f"#restore-{CHARGER}")
    page.wait_for_selector(f"{state} >> text=online", timeout=20_000)
