"""The rest of a charge point operator's day on the page, signed in with named accounts: RFID
cards (add, block, delete), a transaction's page with its meter values and the order it
charged, the order's page with its payment, flags and ledger, a refund from there, the
driver's wallet and ledger, refused settlements and the charger's notifications, deleting a
billing model (refused while it is assigned), and the audit log naming a refund's amount.
A viewer sees all of it without a button; every new view fits a 360 px phone. Screenshots
for the operator guide are taken on the way (``QRCHARGE_DOC_SCREENSHOTS=1``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from playwright.sync_api import Browser

from tests.e2e.conftest import PHONE, Api, Demo, shot, until
from tests.e2e.test_operator import _paid_order, console, fits, visit

CHARGER = "DEMO-02"


def test_add_block_and_delete_an_rfid_card(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    tag = f"CARD-{uuid.uuid4().hex[:8].upper()}"
    page = console(launch, demo, api=api, role="admin")
    visit(page, "#/id-tags", "id-tags")
    page.fill("#id-tag-value", tag)
    page.fill("#id-tag-expiry", "2030-06-30T18:00")
    page.click("#id-tag-form button[type=submit]")
    page.wait_for_selector(f"#notice >> text=Card {tag} saved.")
    row = f"tr[data-id-tag='{tag}']"
    page.wait_for_selector(f"{row} [data-id-tag-status] >> text=Accepted")
    (saved,) = [t for t in api.admin_get("/api/v1/admin/id-tags", prefix=tag)]
    assert saved["status"] == "Accepted" and saved["expiry"].startswith("2030-06-30")

    page.click(f"#block-{tag}")
    page.wait_for_selector(f"{row} [data-id-tag-status] >> text=Blocked")
    assert api.admin_get("/api/v1/admin/id-tags", prefix=tag)[0]["status"] == "Blocked"
    assert api.admin_get("/api/v1/admin/id-tags", prefix=tag)[0]["expiry"] == saved["expiry"]
    shot(page, "operator-id-tags-1280", doc=True)

    page.click(f"#delete-{tag}")  # the confirmation is accepted
    page.wait_for_selector(f"#notice >> text=Card {tag} deleted.")
    page.wait_for_selector(row, state="detached")
    assert api.admin_get("/api/v1/admin/id-tags", prefix=tag) == []
    # the audit log names the card by its last four characters only, and its new state
    visit(page, "#/audit", "audit")
    assert tag not in page.inner_text("#audit")
    blocked = page.locator("tr[data-audit]", has_text=f"…{tag[-4:]}").filter(has_text="Blocked")
    assert blocked.count() == 1
    assert "status: Blocked" in blocked.inner_text()


def test_a_transaction_its_order_a_refund_and_the_drivers_ledger(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    driver, order_id, payment_id = _paid_order(api, CHARGER)
    transactions = api.admin_get("/api/v1/admin/transactions", charger_id=CHARGER, limit=20)
    pk = next(
        t["id"]
        for t in transactions
        if api.admin_get(f"/api/v1/admin/transactions/{t['id']}")["order_id"] == order_id
    )
    page = console(launch, demo, api=api, role="operator")

    # the transactions list, filtered to the charger's ended ones, and one transaction
    visit(page, "#/transactions", "transactions")
    page.fill("#txn-charger", CHARGER)
    page.select_option("#txn-state", "Ended")
    page.click("#txn-filter button")
    page.wait_for_selector(f"tr[data-transaction='{pk}']")
    assert "running" not in page.inner_text("#txn-list")
    page.click(f"#open-txn-{pk}")
    page.wait_for_selector(f"body[data-loaded='transaction:{pk}']", state="attached")
    page.wait_for_selector("#txn-meter-values tr[data-measurand]")
    assert order_id in page.inner_text("#txn-facts")
    shot(page, "operator-transaction-1280", doc=True)

    # its order: state, hold, payment, settlement records and ledger transfers
    page.click("#txn-order")
    page.wait_for_selector(f"body[data-loaded='order:{order_id}']", state="attached")
    page.wait_for_selector("#order-payment [data-payment-status=captured]")
    assert page.inner_text("#order-summary [data-order-status]") == "paid"
    kinds = page.eval_on_selector_all(
        "#order-ledger tr[data-kind]", "r => r.map((e) => e.dataset.kind)"
    )
    assert {"hold", "capture"} <= set(kinds), kinds
    assert page.locator("#order-settlements tr[data-settlement]").count() >= 1
    shot(page, "operator-order-1280", doc=True)

    # a refund from the order's page
    page.fill("#refund-amount", "0.30")
    page.click("#refund-form button[type=submit]")
    page.wait_for_selector(f"#notice >> text=0.30 CNY refunded for order {order_id}")
    page.wait_for_selector("#order-refunded >> text=0.30 CNY")
    page.wait_for_selector("#order-ledger tr[data-kind=refund]")
    (paid,) = api.admin_get("/api/v1/admin/payments", order_id=order_id)
    assert (paid["id"], paid["refunded_amount"]) == (payment_id, 30)

    # the driver's wallet and ledger: the top-up, the hold, the capture, the refund
    page.click("#order-driver")
    page.wait_for_selector(f"body[data-loaded='driver:{driver['id']}']", state="attached")
    balance = api.wallet(driver)["balance"]
    assert page.get_attribute("#wallet-available", "data-amount") == str(balance)
    kinds = page.eval_on_selector_all(
        "#driver-ledger tr[data-kind]", "r => r.map((e) => e.dataset.kind)"
    )
    assert kinds[0] == "refund" and kinds[-1] == "top_up", kinds
    assert "+0.30 CNY" in page.inner_text("#driver-ledger tr[data-kind=refund]")
    shot(page, "operator-driver-ledger-1280", doc=True)
    page.select_option("#ledger-kind", "top_up")
    page.click("#ledger-filter button")
    page.wait_for_selector("#driver-ledger tr[data-kind]:not([data-kind=top_up])", state="detached")
    assert page.locator("#driver-ledger tr[data-kind=top_up]").count() == 1

    # the audit log shows the refund with its amount (the operator's own records)
    visit(page, "#/audit", "audit")
    page.fill("#audit-actor", page.inner_text("#who").split(" · ")[0])
    page.click("#audit-filter button")
    page.wait_for_selector("tr[data-audit] [data-detail=amount]")
    refund = page.locator("tr[data-audit]", has_text=f"payment_id={payment_id}").first
    assert "amount: 0.30 CNY" in refund.inner_text()
    assert order_id in refund.inner_text()
    shot(page, "operator-audit-details-1280", doc=True)
    (entry,) = [
        i
        for i in api.admin_get("/api/v1/admin/audit", limit=50)["items"]
        if i["target"] == f"payment_id={payment_id}"
    ]
    assert entry["details"]["amount"] == 30


def test_refused_settlements_and_the_chargers_notifications(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    driver = api.new_driver(fixed_fee=None)
    forged = "eyJhbGciOiJFUzI1NiJ9.eyJub3QiOiJhIHNldHRsZW1lbnQifQ.c2lnbmF0dXJl"
    refused = api.http.post(
        "/api/v1/settlements", json={"token": forged}, headers=api.bearer(driver)
    )
    assert refused.status_code >= 400
    page = console(launch, demo, api=api, role="viewer")
    visit(page, "#/orders", "orders")
    page.wait_for_selector("#rejections-body tr[data-rejection]")
    assert forged[:12] in page.inner_text("#rejections-body")
    charger = "DEMO-04"  # its log, uploaded to the CSMS: LogStatusNotifications follow
    sent = api.http.post(
        f"/api/v1/admin/chargers/{charger}/commands/GetLog",
        json={"logType": "DiagnosticsLog"},
        headers=api.admin,
    )
    assert sent.status_code == 200, sent.text
    until(lambda: api.admin_get(f"/api/v1/admin/chargers/{charger}/notifications"), timeout=20)
    visit(page, f"#/charger/{charger}", f"charger:{charger}")
    page.wait_for_selector("#charger-notifications tr[data-notification]")
    page.wait_for_selector("#charger-rejections-card")
    shot(page, "operator-notifications-1280", doc=True)


def test_delete_a_billing_model_refused_while_assigned(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    model_id = f"DEL-{uuid.uuid4().hex[:6].upper()}"
    model = {"id": model_id, "currency": "CNY", "energy_price": 15_000, "cap": 8_000}
    created = api.http.post("/api/v1/admin/billing-models", json=model, headers=api.admin)
    assert created.status_code == 201, created.text
    assigned = api.http.post(
        f"/api/v1/admin/billing-models/{model_id}/assignments",
        json={"charger_id": "DEMO-01"},
        headers=api.admin,
    )
    assert assigned.status_code == 201, assigned.text
    page = console(launch, demo, api=api, role="admin")
    visit(page, "#/billing", "billing")
    page.click(f"#delete-model-{model_id}")
    page.wait_for_selector(f"#notice >> text=Billing model {model_id} is still assigned")
    shot(page, "operator-billing-delete-refused-1280", doc=True)
    assert page.locator(f"tr[data-model='{model_id}']").count() == 1

    api.http.delete(
        f"/api/v1/admin/billing-assignments/{assigned.json()['id']}", headers=api.admin
    ).raise_for_status()
    page.click(f"#delete-model-{model_id}")
    page.wait_for_selector(f"#notice >> text=Billing model {model_id} deleted.")
    page.wait_for_selector(f"tr[data-model='{model_id}']", state="detached")
    gone = api.http.get(f"/api/v1/admin/billing-models/{model_id}", headers=api.admin)
    assert gone.status_code == 404


def test_a_viewer_reads_the_new_views_without_a_button_and_they_fit_a_phone(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    tag = f"VIEW-{uuid.uuid4().hex[:6].upper()}"
    api.http.put(
        "/api/v1/admin/id-tags", json={"id_tag": tag, "status": "Accepted"}, headers=api.admin
    ).raise_for_status()
    driver, order_id, _ = _paid_order(api, CHARGER)
    (txn,) = [
        t
        for t in api.admin_get("/api/v1/admin/transactions", charger_id=CHARGER, limit=20)
        if api.admin_get(f"/api/v1/admin/transactions/{t['id']}")["order_id"] == order_id
    ]
    page = console(launch, demo, api=api, role="viewer", viewport=PHONE)
    views = [
        ("#/id-tags", "id-tags", f"tr[data-id-tag='{tag}']"),
        ("#/transactions", "transactions", f"tr[data-transaction='{txn['id']}']"),
        (f"#/transaction/{txn['id']}", f"transaction:{txn['id']}", "#txn-facts"),
        (f"#/order/{order_id}", f"order:{order_id}", "#order-payment [data-payment-status]"),
        (f"#/driver/{driver['id']}", f"driver:{driver['id']}", "#driver-ledger tr[data-kind]"),
        ("#/orders", "orders", "#rejections"),
        ("#/billing", "billing", "tr[data-model]"),
        ("#/audit", "audit", "tr[data-audit]"),
    ]
    for hash_, loaded, ready in views:
        visit(page, hash_, loaded)
        page.wait_for_selector(ready)
        actions = page.locator("#view button:not([data-read]), #view input[type=file]")
        assert actions.count() == 0, (hash_, actions.all_inner_texts())
        forms = "#view form:not(.filters):not(#driver-search):not(#audit-filter)"
        assert page.locator(forms).count() == 0, hash_
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
          .filter((e) => e.getBoundingClientRect().right > innerWidth + 1 && !e.closest('.scroll'))
          .slice(0, 5).map((e) => e.tagName + '.' + e.className + '#' + e.id)""")
        assert not wide, (hash_, wide)
        fits(page)
    visit(page, f"#/order/{order_id}", f"order:{order_id}")
    assert "Read only" in page.inner_text("#refund-card")
    shot(page, "operator-order-360", doc=True)
    visit(page, "#/id-tags", "id-tags")
    shot(page, "operator-id-tags-360", doc=True)
    # the API refuses the viewer all the same
    token = page.evaluate("JSON.parse(sessionStorage.getItem('qrcharge.operator')).token")
    as_viewer = {"Authorization": f"Bearer {token}"}
    for method, path, body in (
        ("PUT", "/api/v1/admin/id-tags", {"id_tag": tag, "status": "Blocked"}),
        ("DELETE", f"/api/v1/admin/id-tags/{tag}", None),
        ("DELETE", "/api/v1/admin/billing-models/DEMO-DRIVER", None),
        ("POST", f"/api/v1/admin/orders/{order_id}/cancel", None),
    ):
        r = api.http.request(method, path, json=body, headers=as_viewer)
        assert r.status_code == 403, (method, path, r.text)
    assert api.admin_get("/api/v1/admin/id-tags", prefix=tag)[0]["status"] == "Accepted"
