"""The operator page does the work: signing in (with the API key here; with named accounts
below), the fleet (and the demo's network cut), a reset of a reference charger on OCPP 1.6 and
2.0.1 with the charger's answer and a refund with an amount, both by an operator account, adding,
editing and deleting a charger, a billing-model change with the cost preview by an admin
account; the page fits a 360 px phone and speaks Chinese. Screenshots for the operator guide
are taken on the way (``QRCHARGE_DOC_SCREENSHOTS=1`` copies them to docs/img). The reservation,
diagnostics, firmware and charging-profile tasks are in test_operator_tasks.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page, Route, ViewportSize

from tests.e2e.conftest import DESKTOP, PHONE, Api, Demo, shot, until

CHARGER = "DEMO-01"


def console(
    launch: Callable[..., Browser],
    demo: Demo,
    *,
    viewport: ViewportSize = DESKTOP,
    locale: str = "en-US",
    api: Api | None = None,
    role: str | None = None,
) -> Page:
    """The operator page on the chargers view: signed in with name and password as a new
    account of ``role`` (made through ``api``), or without a role with the admin API key."""
    page = launch().new_context(viewport=viewport, locale=locale).new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(demo.info["operator_url"])
    page.wait_for_selector("body[data-ready]", state="attached")
    if role is None:
        page.click("#key-sign-in summary")
        page.fill("#admin-key", demo.admin_key)
        page.click("#key-form button")
    else:
        assert api is not None
        name = f"e2e-{role[:3]}-{uuid.uuid4().hex[:8]}"
        password = f"{role}-pass-{uuid.uuid4().hex[:6]}"
        created = api.http.post(
            "/api/v1/admin/operators",
            json={"name": name, "password": password, "role": role},
            headers=api.admin,
        )
        assert created.status_code == 201, created.text
        page.fill("#op-name", name)
        page.fill("#op-password", password)
        page.click("#password-form button")
    page.wait_for_selector("body[data-loaded=chargers]", state="attached")
    if role is not None:
        assert page.inner_text("#who").endswith(f" · {role}")
    return page


def visit(page: Page, hash_: str, loaded: str) -> None:
    page.evaluate(f"location.hash = {hash_!r}")
    page.wait_for_selector(f"body[data-loaded={loaded!r}]", state="attached", timeout=20_000)


def fits(page: Page) -> None:
    """Nothing sticks out sideways (no horizontal scrolling on a phone)."""
    assert page.viewport_size is not None
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url}: {width} px wide"


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
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(demo.info["operator_url"])
    page.wait_for_selector("body[data-ready]", state="attached")
    shot(page, "operator-sign-in-1280", doc=True)
    page.click("#key-sign-in summary")
    page.fill("#admin-key", "wrong-key")
    page.click("#key-form button")
    page.wait_for_selector("#notice >> text=operator key was not accepted")

    page.fill("#admin-key", demo.admin_key)
    page.click("#key-form button")
    state = f"[data-charger-state='{CHARGER}']"
    page.wait_for_selector(f"{state} >> text=online")
    for other in ("DEMO-02", "DEMO-03", "DEMO-04"):
        assert page.locator(f"tr[data-charger='{other}']").count() == 1
    assert "API key · admin" in page.inner_text("#who")

    visit(page, "#/orders", "orders")
    page.wait_for_selector(f"tr[data-order='{order_id}']")
    assert "15.00 CNY" in page.inner_text(f"tr[data-order='{order_id}']")
    visit(page, "#/reconciliation", "reconciliation")
    page.wait_for_selector("#reconciliation-counts .count", timeout=10_000)
    shot(page, "operator-reconciliation-1280", doc=True)

    visit(page, "#/chargers", "chargers")
    page.click(f"#cut-{CHARGER}")
    page.wait_for_selector(f"{state} >> text=offline", timeout=15_000)
    assert api.control(CHARGER, "GET", "/state").json()["link_up"] is False
    shot(page, "operator-offline-1280", doc=True)

    page.click(f"#restore-{CHARGER}")
    page.wait_for_selector(f"{state} >> text=online", timeout=20_000)
    # the order never started: the operator cancels it and its hold is released
    visit(page, "#/orders", "orders")
    page.click(f"#cancel-{order_id}")
    page.wait_for_selector(f"[data-order='{order_id}'] [data-order-status=cancelled]")
    assert api.order(driver, order_id)["status"] == "cancelled"


@pytest.mark.parametrize(
    ("charger_id", "reset_type"),
    [("DEMO-03", "Soft"), ("DEMO-04", "Immediate")],
    ids=["ocpp1.6", "ocpp2.0.1"],
)
def test_reset_a_charger_from_its_page(
    charger_id: str, reset_type: str, demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    page = console(launch, demo, api=api, role="operator")
    page.click(f"tr[data-charger='{charger_id}'] a.charger-link")
    page.wait_for_selector(f"body[data-loaded='charger:{charger_id}']", state="attached")
    assert page.inner_text("#charger-title") == charger_id
    page.select_option("#command-action", "Reset")
    page.select_option("#cmd-type", reset_type)
    assert f'"type": "{reset_type}"' in (page.text_content("#command-payload") or "")
    page.click("#command-send")
    page.wait_for_selector("#command-answer [data-command-status=Accepted]", timeout=20_000)
    assert "the charger answered Accepted" in page.inner_text("#command-answer")
    # the charger reboots: it drops its connection, boots again, and the log shows the Reset
    until(lambda: api.admin_get(f"/api/v1/admin/chargers/{charger_id}")["connected"], timeout=30)
    page.wait_for_selector("#message-log td.frame:has-text('\"Reset\"')", timeout=15_000)
    page.wait_for_selector("#charger-status [data-charger-state] >> text=online", timeout=10_000)
    if charger_id == "DEMO-03":
        shot(page, "operator-reset-1280", doc=True)

    # configuration (1.6) or a variable (2.0.1), read from the charger, as a table
    if charger_id == "DEMO-03":
        page.select_option("#command-action", "GetConfiguration")
        page.fill("#cmd-keys", "HeartbeatInterval")
    else:
        page.select_option("#command-action", "GetVariables")
        page.fill("#cmd-component", "OCPPCommCtrlr")
        page.fill("#cmd-variable", "HeartbeatInterval")
    page.click("#command-send")
    row = page.wait_for_selector("#command-answer tr:has-text('HeartbeatInterval')", timeout=20_000)
    assert row is not None and any(c.isdigit() for c in row.inner_text())

    # the remote-control lists: a table, "nothing yet", or (a CSMS without them) said so
    for kind in ("reservations", "charging-profiles", "firmware", "diagnostics", "uploads"):
        assert page.locator(f"#list-{kind} .body > *").count() == 1
        assert page.locator(f"#list-{kind} .error-line").count() == 0
    # Operative on an available connector: the charger accepts
    page.select_option("#command-action", "ChangeAvailability")
    page.select_option("#cmd-status", "Operative")
    page.click("#command-send")
    done = page.wait_for_selector("#command-answer [data-command-status]", timeout=20_000)
    assert done is not None
    assert done.get_attribute("data-command-status") == "Accepted"

    # a command the charger's version does not have is not even offered
    offered = page.eval_on_selector_all("#command-action option", "os => os.map(o => o.value)")
    other = "RequestStartTransaction" if charger_id == "DEMO-03" else "RemoteStartTransaction"
    assert "ChangeAvailability" in offered and other not in offered


def test_add_edit_and_delete_a_charger(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    charger_id = f"E2E-{uuid.uuid4().hex[:6].upper()}"
    page = console(launch, demo)
    form = "#add-charger"
    page.fill(f"{form} [name=id]", charger_id)
    page.fill(f"{form} [name=password]", "e2e-charger-pass")
    page.fill(f"{form} [name=location]", "Depot 7")
    page.fill(f"{form} [name=evses]", "2")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector(f"tr[data-charger='{charger_id}'] >> text=Depot 7")
    assert api.admin_get(f"/api/v1/admin/chargers/{charger_id}")["location"] == "Depot 7"

    page.click(f"tr[data-charger='{charger_id}'] a.charger-link")
    page.wait_for_selector(f"body[data-loaded='charger:{charger_id}']", state="attached")
    page.fill("#edit-charger [name=location]", "Depot 8, bay 2")
    page.fill("#edit-charger [name=password]", "another-pass-9")
    page.click("#edit-charger button[type=submit]")
    page.wait_for_selector("#charger-status >> text=Depot 8, bay 2")
    page.click("#reject-charger")
    page.wait_for_selector("#charger-registration >> text=rejected")
    shown = api.admin_get(f"/api/v1/admin/chargers/{charger_id}")
    assert (shown["location"], shown["registration"]) == ("Depot 8, bay 2", "Rejected")
    page.click("#accept-charger")
    page.wait_for_selector("#charger-registration >> text=accepted")
    # not connected: a command says so, in words
    page.select_option("#command-action", "ClearCache")
    page.click("#command-send")
    page.wait_for_selector("#command-answer [data-command-error='409']")
    shot(page, "operator-charger-1280", doc=True)

    page.click("#delete-charger")
    page.wait_for_selector("body[data-loaded=chargers]", state="attached")
    page.wait_for_selector(f"#notice >> text=Charger {charger_id} deleted")
    assert page.locator(f"tr[data-charger='{charger_id}']").count() == 0
    gone = api.http.get(f"/api/v1/admin/chargers/{charger_id}", headers=api.admin)
    assert gone.status_code == 404


@pytest.mark.parametrize("reader", ["refresh", "action"])
def test_a_read_in_flight_when_its_charger_is_deleted_leaves_the_notice(
    demo: Demo, api: Api, launch: Callable[..., Browser], reader: str
) -> None:
    """The charger page reads the charger again every few seconds (``refresh``) and after an
    action such as a registration set (``action``); such a read still waiting when the charger
    is deleted gets a 404 after the page was left, and that answer belongs to no page: the
    "deleted" notice stays (the action's case was the flake of the test above)."""
    charger_id = api.new_charger("E2E-R")
    page = console(launch, demo)
    visit(page, f"#/charger/{charger_id}", f"charger:{charger_id}")
    held: list[Route] = []
    deleting = False

    def hold_reads(route: Route) -> None:
        if route.request.method == "GET" and not deleting:
            held.append(route)  # answered below, after the delete
        else:
            route.continue_()

    page.route(f"**/api/v1/admin/chargers/{charger_id}", hold_reads)
    if reader == "action":
        page.click("#reject-charger")  # set, then the page read again
    until(lambda: page.wait_for_timeout(50) or held, timeout=15)
    deleting = True
    page.click("#delete-charger")
    page.wait_for_selector(f"#notice >> text=Charger {charger_id} deleted")
    page.wait_for_selector("body[data-loaded=chargers]", state="attached")
    with page.expect_response(lambda r: r.url.endswith(f"/chargers/{charger_id}")) as answer:
        for route in held:
            route.continue_()
    assert answer.value.status == 404
    page.wait_for_timeout(500)  # the stale read's error, if it were shown, is shown by now
    assert page.inner_text("#notice") == f"Charger {charger_id} deleted."


def test_a_live_page_left_during_its_first_load_leaves_no_timer_behind(
    demo: Demo, launch: Callable[..., Browser]
) -> None:
    """The charger page refreshes itself every few seconds, a form page (billing) loads once
    so that typing is not lost: a charger page left while its first load was still waiting
    must not start its timer after all, which would refresh the billing page forever."""
    page = console(launch, demo)
    page.clock.install()
    held: list[Route] = []
    page.route("**/api/v1/admin/chargers/*/messages*", lambda route: held.append(route))
    page.evaluate(f"location.hash = '#/charger/{CHARGER}'")
    until(lambda: page.wait_for_timeout(50) or held, timeout=15)  # its first load waits
    visit(page, "#/billing", "billing")
    billing: list[str] = []
    page.on("request", lambda r: billing.append(r.url) if "billing-models?" in r.url else None)
    with page.expect_response(lambda r: "settlement-rejections" in r.url):  # its last read
        for route in held:
            route.continue_()
    page.wait_for_timeout(300)  # the left page's first load ends (and, before, set its timer)
    page.clock.run_for(10_000)  # three refresh periods
    page.wait_for_timeout(300)
    assert billing == []


def _paid_order(api: Api, charger_id: str) -> tuple[dict[str, object], str, int]:
    """A driver's order on ``charger_id``, started remotely, charged, settled and paid."""
    driver = api.new_driver(top_up=10_000)
    created = api.http.post(
        "/api/v1/orders", json={"charger_id": charger_id, "evse_id": 1, "amount": 1_500},
        headers=api.bearer(driver),
    )  # fmt: skip
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    api.control(charger_id, "POST", "/evses/1/plug")
    started = api.http.post(f"/api/v1/orders/{order_id}/remote-start", headers=api.bearer(driver))
    assert started.status_code < 300, started.text
    until(lambda: api.order(driver, order_id)["status"] == "started", timeout=20)
    until(lambda: api.control(charger_id, "GET", "/state").json()["evses"][0]["register_wh"] > 0)
    api.control(charger_id, "POST", "/evses/1/unplug")
    payment_id = until(lambda: api.order(driver, order_id).get("payment_id"), timeout=30)
    confirmed = api.http.post(f"/api/v1/payments/{payment_id}/confirm", headers=api.bearer(driver))
    assert confirmed.status_code < 300, confirmed.text
    return driver, order_id, int(payment_id)


def test_refund_part_of_an_order(demo: Demo, api: Api, launch: Callable[..., Browser]) -> None:
    driver, order_id, payment_id = _paid_order(api, "DEMO-02")
    before = api.wallet(driver)["balance"]
    page = console(launch, demo, api=api, role="operator")
    visit(page, "#/orders", "orders")
    page.click(f"#refund-{order_id}")
    page.wait_for_selector("#refund-form")
    page.fill("#refund-amount", "0.50")
    shot(page, "operator-refund-1280", doc=True)
    page.click("#refund-form button[type=submit]")
    page.wait_for_selector(f"#notice >> text=0.50 CNY refunded for order {order_id}")
    payment = next(p for p in api.admin_get("/api/v1/admin/payments") if p["id"] == payment_id)
    assert payment["refunded_amount"] == 50
    assert api.wallet(driver)["balance"] == before + 50
    page.wait_for_selector(f"tr[data-order='{order_id}'] >> text=refunded 0.50 CNY")


def test_billing_model_change_with_the_preview(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    model_id = f"E2E-B-{uuid.uuid4().hex[:6]}"
    page = console(launch, demo, api=api, role="admin")  # billing models are the admins'
    visit(page, "#/operators", "operators")
    page.wait_for_selector("#operators tr[data-operator]")
    shot(page, "operator-users-1280", doc=True)
    visit(page, "#/billing", "billing")
    form = "#model-form"
    page.fill(f"{form} [name=id]", model_id)
    page.fill(f"{form} [name=name]", "Depot night")
    page.fill(f"{form} [name=fixed_fee]", "2.00")
    page.fill(f"{form} [name=energy_price]", "1.50")
    page.fill(f"{form} [name=time_price]", "0.30")
    page.fill("#sample-kwh", "10")
    page.click("#preview-button")  # 2.00 + 10 kWh x 1.50 + 1 h x 0.30
    page.wait_for_selector("#preview-total >> text=17.30 CNY")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector(f"#notice >> text=Billing model {model_id} created")
    page.wait_for_selector(f"tr[data-model='{model_id}']")
    page.click(f"#open-model-{model_id}")
    page.wait_for_selector(f"#model-editor[data-ready='{model_id}'] >> text=version 1")

    page.fill(f"{form} [name=energy_price]", "1.00")
    page.click("#preview-button")
    page.wait_for_selector("#preview-total >> text=12.30 CNY")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector(f"#notice >> text=Billing model {model_id} saved")
    page.wait_for_selector(f"#model-editor[data-ready='{model_id}'] >> text=version 2")
    page.fill("#assign-form [name=charger_id]", "DEMO-02")
    page.click("#assign-form button[type=submit]")
    page.wait_for_selector("#assignments-card tr[data-assignment]")
    shot(page, "operator-billing-1280", doc=True)
    model = api.admin_get(f"/api/v1/admin/billing-models/{model_id}")
    assert (model["version"], model["energy_price"], model["fixed_fee"]) == (2, 10_000, 20_000)
    assigned = api.admin_get("/api/v1/admin/billing-assignments", charger_id="DEMO-02")
    assert [a["billing_model_id"] for a in assigned] == [model_id]
    # leave DEMO-02's prices as the other tests expect them
    page.click("#assignments-card tr[data-assignment] button")
    page.wait_for_selector("#assignments-card >> text=Not assigned")
    assert api.admin_get("/api/v1/admin/billing-assignments", charger_id="DEMO-02") == []


VIEWS = [
    ("#/chargers", "chargers"), ("#/charger/DEMO-01", "charger:DEMO-01"), ("#/orders", "orders"),
    ("#/drivers", "drivers"), ("#/billing", "billing"), ("#/reconciliation", "reconciliation"),
    ("#/keys", "keys"), ("#/audit", "audit"), ("#/operators", "operators"),
    ("#/transactions", "transactions"), ("#/id-tags", "id-tags"), ("#/account", "account"),
]  # fmt: skip


def test_every_view_fits_a_phone_in_chinese(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    page = console(launch, demo, viewport=PHONE, locale="zh-CN")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert "充电桩" in page.inner_text("#tabs")
    assert "在线" in page.inner_text("#chargers")
    for hash_, loaded in VIEWS:
        visit(page, hash_, loaded)
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
          .filter((e) => e.getBoundingClientRect().right > innerWidth + 1 && !e.closest('.scroll'))
          .slice(0, 5).map((e) => e.tagName + '.' + e.className + '#' + e.id)""")
        assert not wide, (hash_, wide)
        fits(page)
    visit(page, "#/charger/DEMO-01", "charger:DEMO-01")
    assert "命令" in page.inner_text("#commands-card h2")
    shot(page, "operator-charger-zh-360", doc=True)
    visit(page, "#/chargers", "chargers")
    shot(page, "operator-chargers-zh-360", doc=True)

    page.click("#lang-switch")  # to English, remembered
    page.wait_for_selector("#tabs >> text=Chargers")
    fits(page)
    shot(page, "operator-chargers-360", doc=True)


def test_the_page_offers_only_what_the_role_may_do(
    demo: Demo, launch: Callable[..., Browser]
) -> None:
    """The role comes from ``GET /api/v1/admin/me``; here it is answered for the admin key as
    if the key were an operator's, so the admin-only controls must go while the operator's
    stay (a viewer and an operator account against the real API: test_operator_accounts)."""
    role = "operator"
    page = launch().new_context(viewport=DESKTOP, locale="en-US").new_page()
    me = {"name": f"e2e-{role}", "role": role, "kind": "operator"}
    page.route("**/api/v1/admin/me", lambda route: route.fulfill(json=me))
    page.goto(demo.info["operator_url"])
    page.wait_for_selector("body[data-ready]", state="attached")
    page.click("#key-sign-in summary")
    page.fill("#admin-key", demo.admin_key)
    page.click("#key-form button")
    page.wait_for_selector("body[data-loaded=chargers]", state="attached")
    assert page.inner_text("#who") == f"e2e-{role} · {role}"
    assert page.is_hidden("#tabs a[data-view=operators]")
    expected = {  # (selector, shown to an operator)
        "chargers": [("#add-charger", True), (f"#cut-{CHARGER}", True)],
        f"charger:{CHARGER}": [("#command-form", True), ("#edit-charger", True),
                               ("#presence-create", False), ("#settlement-key-form", False)],
        "orders": [("#refund-card form", False)],
        "drivers": [("[id^=disable-]", False)],
        "billing": [("#new-model", False), ("#model-form", False)],
        "keys": [("#rotate-keys", False)],
    }  # fmt: skip
    for loaded, checks in expected.items():
        visit(page, "#/" + loaded.replace(":", "/"), loaded)
        if loaded == "chargers":
            page.wait_for_selector(f"tr[data-charger='{CHARGER}'] [data-charger-state]")
        for selector, shown in checks:
            assert (page.locator(selector).count() > 0) is shown, (role, loaded, selector)


def test_disable_and_sign_out_a_driver(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    driver = api.new_driver(fixed_fee=None)
    page = console(launch, demo)
    visit(page, "#/drivers", "drivers")
    page.fill("#driver-email", driver["email"])
    page.click("#driver-search button")
    page.wait_for_selector(f"#driver-list[data-query='{driver['email']}']", state="attached")
    assert page.locator("tr[data-user]").count() == 1
    assert page.locator(f"tr[data-user='{driver['id']}']").count() == 1

    page.click(f"#signout-{driver['id']}")
    page.wait_for_selector(f"#notice >> text={driver['email']} is signed out everywhere")
    assert api.http.get("/api/v1/me/wallet", headers=api.bearer(driver)).status_code == 401

    page.click(f"#disable-{driver['id']}")
    page.wait_for_selector(f"[data-user-state='{driver['id']}'] >> text=disabled")
    shot(page, "operator-drivers-1280", doc=True)
    signin = {"username": driver["email"], "password": driver["password"]}
    assert api.http.post("/api/v1/token", data=signin).status_code >= 400
    page.click(f"#disable-{driver['id']}")  # enable again
    page.wait_for_selector(f"[data-user-state='{driver['id']}'] >> text=active")
    assert api.http.post("/api/v1/token", data=signin).status_code == 200

    visit(page, "#/keys", "keys")
    page.wait_for_selector("#keys table")
    assert page.locator("#rotate-keys").count() == 1
    shot(page, "operator-keys-1280", doc=True)
