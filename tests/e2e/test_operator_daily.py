"""What a CPO's staff do daily without the raw API: find orders (flagged ones, older pages, one
opened by its id), stop a running transaction on the reference charger (OCPP 1.6 from the
transaction's page, 2.0.1 from the charger's list; a viewer has no Stop), see which billing
model applies at a charger and to a driver there, read statuses in Chinese, and change one's
own password. Screenshots for the operator guide are taken on the way
(``QRCHARGE_DOC_SCREENSHOTS=1``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import DESKTOP, Api, Demo, shot, until
from tests.e2e.test_operator import visit
from tests.e2e.test_operator_tasks import account

ORDERS = 51  # one more than a page of the orders view


def sign_in(
    launch: Callable[..., Browser], demo: Demo, name: str, password: str, locale: str = "en-US"
) -> Page:
    page = launch().new_context(viewport=DESKTOP, locale=locale).new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(demo.info["operator_url"])
    page.wait_for_selector("body[data-ready]", state="attached")
    page.fill("#op-name", name)
    page.fill("#op-password", password)
    page.click("#password-form button")
    page.wait_for_selector("body[data-loaded=chargers]", state="attached")
    return page


def orders_of(api: Api, driver: dict[str, Any], charger_id: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        created = api.http.post(
            "/api/v1/orders",
            json={"charger_id": charger_id, "evse_id": 1, "amount": 100},
            headers=api.bearer(driver),
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return ids


def rows(page: Page) -> list[str]:
    return list(
        page.eval_on_selector_all("#orders tr[data-order]", "r => r.map((e) => e.dataset.order)")
    )


def test_orders_by_flag_older_pages_an_id_and_the_tariff_that_applies(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    charger_id = api.new_charger()
    driver = api.new_driver(top_up=10_000)
    ids = orders_of(api, driver, charger_id, ORDERS)
    cancelled = api.http.post(f"/api/v1/admin/orders/{ids[0]}/cancel", headers=api.admin)
    assert cancelled.status_code == 200, cancelled.text  # the oldest: flagged "cancelled"
    page = sign_in(launch, demo, *account(api, "viewer"))

    visit(page, "#/orders", "orders")
    page.fill("#orders-charger", charger_id)
    page.click("#orders-filter button")
    page.wait_for_selector(f"#orders [data-query*='charger_id={charger_id}']", state="attached")
    assert len(rows(page)) == 50 and ids[0] not in rows(page)
    page.click("#orders-older")
    page.wait_for_selector(f"tr[data-order='{ids[0]}']")
    assert sorted(rows(page)) == sorted(ids)
    assert page.locator("#orders-older").count() == 0  # nothing older
    page.select_option("#orders-flagged", "true")
    page.click("#orders-filter button")
    page.wait_for_selector("#orders [data-query*='flagged=true']", state="attached")
    assert rows(page) == [ids[0]]
    assert page.inner_text(f"tr[data-order='{ids[0]}'] [data-order-status]") == "cancelled"
    assert "cancelled" in page.inner_text(f"tr[data-order='{ids[0]}'] td.flag")
    page.fill("#order-id", "NO-SUCH-ORDER")
    page.click("#order-open button")
    page.wait_for_selector("#notice >> text=No order NO-SUCH-ORDER.")
    assert page.evaluate("location.hash") == "#/orders"
    page.fill("#order-id", ids[7])
    shot(page, "operator-orders-search-1280", doc=True)
    page.click("#order-open button")
    page.wait_for_selector(f"body[data-loaded='order:{ids[7]}']", state="attached")

    # the charger's page: nothing assigned there, the default applies; then a charger model
    visit(page, f"#/charger/{charger_id}", f"charger:{charger_id}")
    assert page.get_attribute("#tariff-scope", "data-scope") == "default"
    model_id = f"E2E-C-{uuid.uuid4().hex[:6]}"
    for path, body in (
        (
            "/api/v1/admin/billing-models",
            {"id": model_id, "currency": "CNY", "energy_price": 15_000},
        ),
        (f"/api/v1/admin/billing-models/{model_id}/assignments", {"charger_id": charger_id}),
    ):
        assert api.http.post(path, json=body, headers=api.admin).status_code == 201
    visit(page, "#/orders", "orders")
    visit(page, f"#/charger/{charger_id}", f"charger:{charger_id}")
    assert page.get_attribute("#tariff-scope", "data-scope") == f"charger:{charger_id}"
    assert page.inner_text("#tariff-scope") == f"assigned to charger {charger_id}"
    assert page.get_attribute("#tariff-model", "data-model") == model_id
    assert "1.50 CNY/kWh" in page.inner_text("#tariff-facts")
    # the model's prices in the audit log as the billing view writes them, not 1/10,000 units
    visit(page, "#/audit", "audit")
    page.fill("#audit-actor", "api_key")
    page.click("#audit-filter button")
    price = page.locator("tr[data-audit] [data-detail=energy_price]", has_text="1.50 CNY")
    price.first.wait_for()
    assert "15000" not in price.first.inner_text()

    # the driver's page: their own model (new_driver assigns one) wins at this charger
    visit(page, f"#/driver/{driver['id']}", f"driver:{driver['id']}")
    scope = f"user:{driver['id']}"
    page.wait_for_selector(f"#driver-assignments tr[data-scope='{scope}']")
    page.fill("#driver-tariff-charger", charger_id)
    page.click("#driver-tariff-form button")
    page.wait_for_selector(f"#driver-tariff #tariff-scope[data-scope='{scope}']")
    assert page.inner_text("#driver-tariff #tariff-scope") == f"assigned to driver {driver['id']}"
    shot(page, "operator-driver-tariff-1280", doc=True)

    # the same order in Chinese: its status and its payment's in words
    zh = sign_in(launch, demo, *account(api, "viewer"), locale="zh-CN")
    visit(zh, f"#/order/{ids[0]}", f"order:{ids[0]}")
    assert zh.inner_text("#order-summary [data-order-status]") == "已取消"
    visit(zh, "#/orders", "orders")
    zh.fill("#orders-charger", charger_id)
    zh.select_option("#orders-flagged", "false")
    zh.click("#orders-filter button")
    zh.wait_for_selector("#orders [data-query*='flagged=false']", state="attached")
    assert zh.inner_text(f"tr[data-order='{ids[-1]}'] [data-order-status]") == "已创建"


def running(api: Api, charger_id: str) -> int:
    """The transaction (CSMS row id) running on ``charger_id`` (its one EVSE in use)."""

    def find() -> int | None:
        found = api.admin_get("/api/v1/admin/transactions", charger_id=charger_id, state="Started")
        return int(found[0]["id"]) if found else None

    pk: int = until(find, timeout=20)
    return pk


@pytest.mark.parametrize(
    ("charger_id", "where"),
    [("DEMO-03", "transaction"), ("DEMO-04", "charger")],
    ids=["ocpp1.6-transaction-page", "ocpp2.0.1-charger-page"],
)
def test_stop_a_running_transaction(
    charger_id: str, where: str, demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    driver = api.new_driver(top_up=10_000)
    created = api.http.post(
        "/api/v1/orders", json={"charger_id": charger_id, "evse_id": 1, "amount": 1_500},
        headers=api.bearer(driver),
    )  # fmt: skip
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    api.control(charger_id, "POST", "/evses/1/plug")
    try:
        started = api.http.post(
            f"/api/v1/orders/{order_id}/remote-start", headers=api.bearer(driver)
        )
        assert started.status_code < 300, started.text
        until(lambda: api.order(driver, order_id)["status"] == "started", timeout=20)
        pk = running(api, charger_id)
        txn = api.admin_get(f"/api/v1/admin/transactions/{pk}")

        viewer = sign_in(launch, demo, *account(api, "viewer"))
        visit(viewer, f"#/transaction/{pk}", f"transaction:{pk}")
        visit(viewer, f"#/charger/{charger_id}", f"charger:{charger_id}")
        viewer.wait_for_selector(f"#charger-transactions tr[data-transaction='{pk}']")
        assert viewer.locator(f"#stop-txn-{pk}").count() == 0

        operator = account(api, "operator")
        page = sign_in(launch, demo, *operator)
        if where == "transaction":
            visit(page, f"#/transaction/{pk}", f"transaction:{pk}")
        else:
            visit(page, f"#/charger/{charger_id}", f"charger:{charger_id}")
        page.wait_for_selector(f"#stop-txn-{pk}")
        if where == "transaction":
            shot(page, "operator-transaction-stop-1280", doc=True)
        page.click(f"#stop-txn-{pk}")  # the confirmation is accepted
        page.wait_for_selector(
            f"#notice >> text=Stop of transaction {txn['transaction_id']}: "
            "the charger answered Accepted."
        )
        until(lambda: not api.control(charger_id, "GET", "/state").json()["transactions"])
        until(lambda: api.admin_get(f"/api/v1/admin/transactions/{pk}")["state"] == "Ended")
        page.wait_for_selector(f"#stop-txn-{pk}", state="detached", timeout=20_000)
        # the audit log names the command sent on the operator's behalf and the answer
        action = "RemoteStopTransaction" if charger_id == "DEMO-03" else "RequestStopTransaction"
        (entry,) = api.admin_get("/api/v1/admin/audit", actor=operator[0])["items"][:1]
        assert f"action={action}" in entry["target"], entry
        assert entry["status_code"] == 200 and entry["details"].get("answer") == "Accepted", entry
        assert str(entry["details"].get("transactionId")) == txn["transaction_id"], entry
    finally:
        api.control(charger_id, "POST", "/evses/1/unplug")


def test_an_operator_changes_their_own_password(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    name, password = account(api, "viewer")
    elsewhere = api.http.post(
        "/api/v1/admin/token", data={"username": name, "password": password}
    ).json()["access_token"]
    page = sign_in(launch, demo, name, password)
    page.click("#who")
    page.wait_for_selector("body[data-loaded=account]", state="attached")
    new = f"new-password-{uuid.uuid4().hex[:6]}"
    page.fill("#pw-current", "not-my-password")
    page.fill("#pw-new", new)
    page.fill("#pw-repeat", new)
    page.click("#password-change button[type=submit]")
    page.wait_for_selector("#notice >> text=The current password is wrong.")
    page.fill("#pw-current", password)
    page.fill("#pw-new", new)
    page.fill("#pw-repeat", new)
    shot(page, "operator-account-1280", doc=True)
    page.click("#password-change button[type=submit]")
    page.wait_for_selector("#notice >> text=Password changed; your other sign-ins have ended.")
    # this page stays signed in; the other token ended; only the new password signs in
    visit(page, "#/orders", "orders")
    other = api.http.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {elsewhere}"})
    assert other.status_code == 401
    old = api.http.post("/api/v1/admin/token", data={"username": name, "password": password})
    assert old.status_code == 401
    fresh = api.http.post("/api/v1/admin/token", data={"username": name, "password": new})
    assert fresh.status_code == 200
