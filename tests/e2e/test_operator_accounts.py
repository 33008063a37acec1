"""Signing in to the operator page as a named operator (name and password, a role): an
operator acts on chargers but sees no admin-only control; the audit view shows what they did,
under their name; signing out ends the session."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from playwright.sync_api import Browser

from tests.e2e.conftest import DESKTOP, Api, Demo, shot

CHARGER = "DEMO-03"


def test_an_operator_signs_in_with_a_password_and_acts_within_the_role(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    name = f"e2e-op-{uuid.uuid4().hex[:6]}"
    password = "e2e-operator-pass-1"
    created = api.http.post(
        "/api/v1/admin/operators",
        json={"name": name, "password": password, "role": "operator"},
        headers=api.admin,
    )
    assert created.status_code == 201, created.text

    page = launch().new_context(viewport=DESKTOP, locale="en-US").new_page()
    page.goto(demo.info["operator_url"])
    page.wait_for_selector("body[data-ready]", state="attached")
    page.fill("#op-name", name)
    page.fill("#op-password", "not-the-password")
    page.click("#password-form button")
    page.wait_for_selector("#notice >> text=name and password were not accepted")
    page.fill("#op-password", password)
    page.click("#password-form button")
    page.wait_for_selector("body[data-loaded=chargers]", state="attached")
    assert page.inner_text("#who") == f"{name} · operator"
    assert page.is_hidden("#tabs a[data-view=operators]")

    page.evaluate(f"location.hash = '#/charger/{CHARGER}'")
    page.wait_for_selector(f"body[data-loaded='charger:{CHARGER}']", state="attached")
    page.select_option("#command-action", "ClearCache")
    page.click("#command-send")
    page.wait_for_selector("#command-answer [data-command-status=Accepted]", timeout=20_000)
    assert page.locator("#presence-create").count() == 0  # keys are the admins'

    page.evaluate("location.hash = '#/keys'")
    page.wait_for_selector("body[data-loaded=keys]", state="attached")
    assert page.locator("#rotate-keys").count() == 0

    page.evaluate("location.hash = '#/audit'")
    page.wait_for_selector("body[data-loaded=audit]", state="attached")
    page.fill("#audit-actor", name)
    page.click("#audit-filter button")
    page.wait_for_selector(f"#audit tr[data-audit] >> text={name}")
    assert "ClearCache" in page.inner_text("#audit") or "commands" in page.inner_text("#audit")
    shot(page, "operator-audit-1280", doc=True)

    page.click("#sign-out")
    page.wait_for_selector("#sign-in:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('qrcharge.operator')") is None


def test_a_viewer_sees_everything_and_no_action(
    demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    """A viewer account against the real API: every view reads, none offers an action (the
    only buttons are searches, opening a model, paging: marked ``data-read``), and the
    viewer's own token is refused a write by the CSMS all the same (403, in the audit log)."""
    name = f"e2e-view-{uuid.uuid4().hex[:6]}"
    password = "e2e-viewer-pass-1"
    created = api.http.post(
        "/api/v1/admin/operators",
        json={"name": name, "password": password, "role": "viewer"},
        headers=api.admin,
    )
    assert created.status_code == 201, created.text
    page = launch().new_context(viewport=DESKTOP, locale="en-US").new_page()
    page.goto(demo.info["operator_url"])
    page.wait_for_selector("body[data-ready]", state="attached")
    page.fill("#op-name", name)
    page.fill("#op-password", password)
    page.click("#password-form button")
    page.wait_for_selector("body[data-loaded=chargers]", state="attached")
    assert page.inner_text("#who") == f"{name} · viewer"
    assert page.is_hidden("#tabs a[data-view=operators]")
    page.wait_for_selector("tr[data-charger='DEMO-01'] [data-charger-state]")
    for view, loaded in (("#/chargers", "chargers"), (f"#/charger/{CHARGER}", f"charger:{CHARGER}"),
                         ("#/orders", "orders"), ("#/drivers", "drivers"),
                         ("#/billing", "billing"), ("#/reconciliation", "reconciliation"),
                         ("#/keys", "keys"), ("#/audit", "audit"),
                         ("#/transactions", "transactions"), ("#/id-tags", "id-tags")):  # fmt: skip
        page.evaluate(f"location.hash = {view!r}")
        page.wait_for_selector(f"body[data-loaded={loaded!r}]", state="attached")
        actions = page.locator("#view button:not([data-read]), #view input[type=file]")
        assert actions.count() == 0, (view, actions.all_inner_texts())
        forms = "#view form:not(.filters):not(#driver-search):not(#audit-filter)"
        assert page.locator(forms).count() == 0, view
    # a billing model's prices read only, and what a sample charge would cost with them
    page.evaluate("location.hash = '#/billing'")
    page.wait_for_selector("body[data-loaded=billing]", state="attached")
    page.click("#open-model-DEMO-DRIVER")
    page.wait_for_selector("#model-editor[data-ready='DEMO-DRIVER'] #model-form[data-read]")
    assert page.locator("#model-form [name=energy_price][readonly]").count() == 1
    assert page.locator("#view button:not([data-read])").count() == 0
    page.fill("#sample-kwh", "10")
    page.click("#preview-button")
    page.wait_for_selector("#preview-total[data-total]")
    # the charger's lists are there to read (a viewer may not cancel or clear)
    page.evaluate(f"location.hash = '#/charger/{CHARGER}'")
    page.wait_for_selector(f"body[data-loaded='charger:{CHARGER}']", state="attached")
    for kind in ("reservations", "charging-profiles", "firmware", "diagnostics", "uploads"):
        assert page.locator(f"#list-{kind} .error-line").count() == 0, kind
    assert "Read only" in page.inner_text("#commands-card")

    token = page.evaluate("JSON.parse(sessionStorage.getItem('qrcharge.operator')).token")
    as_viewer = {"Authorization": f"Bearer {token}"}
    refused = api.http.post(
        f"/api/v1/admin/chargers/{CHARGER}/commands/Reset", json={"type": "Soft"}, headers=as_viewer
    )
    assert refused.status_code == 403, refused.text
    assert f"{name!r} has the viewer role" in refused.json()["detail"]
    log = api.admin_get("/api/v1/admin/audit", actor=name)["items"]
    assert (log[0]["status_code"], log[0]["target"]) == (403, f"charger_id={CHARGER}, action=Reset")
