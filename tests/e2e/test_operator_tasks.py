"""An operator's daily remote control from the page, signed in with a named operator account
(role ``operator``, not the API key), against the demo's reference chargers on OCPP 1.6 and
2.0.1: a reservation for a driver's order that makes the charger refuse another driver's
start QR (reason ``reserved``) and is used by the order's own QR; diagnostics / logs uploaded
to the CSMS itself (the location left empty) and downloaded from the uploads list; a firmware
update followed to ``Installed``; a charging profile set, its composite schedule read, and
cleared. Screenshots for the operator guide are taken on the way
(``QRCHARGE_DOC_SCREENSHOTS=1`` copies them to docs/img)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import DESKTOP, Api, Demo, shot, until

IMAGE = b"qrcharge demo firmware image\n" * 64
VERSIONS = pytest.mark.parametrize(
    "charger_id", ["DEMO-03", "DEMO-04"], ids=["ocpp1.6", "ocpp2.0.1"]
)


def account(api: Api, role: str) -> tuple[str, str]:
    """A new operator account with ``role`` (made with the API key): (name, password)."""
    name = f"e2e-{role[:3]}-{uuid.uuid4().hex[:8]}"
    password = f"{role}-password-{uuid.uuid4().hex[:6]}"
    created = api.http.post(
        "/api/v1/admin/operators",
        json={"name": name, "password": password, "role": role},
        headers=api.admin,
    )
    assert created.status_code == 201, created.text
    return name, password


def signed_in(launch: Callable[..., Browser], demo: Demo, api: Api, role: str) -> Page:
    """The operator page, signed in with name and password as a new account of ``role``."""
    name, password = account(api, role)
    page = launch().new_context(viewport=DESKTOP, locale="en-US").new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(demo.info["operator_url"])
    page.wait_for_selector("body[data-ready]", state="attached")
    page.fill("#op-name", name)
    page.fill("#op-password", password)
    page.click("#password-form button")
    page.wait_for_selector("body[data-loaded=chargers]", state="attached")
    assert page.inner_text("#who") == f"{name} · {role}"
    return page


def charger_page(page: Page, charger_id: str) -> None:
    page.evaluate(f"location.hash = '#/charger/{charger_id}'")
    page.wait_for_selector(f"body[data-loaded='charger:{charger_id}']", state="attached")


def send(page: Page, action: str, fields: dict[str, str] | None = None) -> str:
    """Picks ``action``, fills its fields (id without ``cmd-``: value), sends it and returns
    the status the charger answered (the command must be answered, not fail)."""
    page.select_option("#command-action", action)
    for name, value in (fields or {}).items():
        selector = f"#cmd-{name}"
        if page.eval_on_selector(selector, "e => e.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click("#command-send")
    answered = page.wait_for_selector(
        "#command-answer [data-command-status], #command-answer [data-command-error]",
        timeout=20_000,
    )
    assert answered is not None
    assert answered.get_attribute("data-command-error") is None, answered.inner_text()
    return str(answered.get_attribute("data-command-status"))


def order(api: Api, driver: dict[str, Any], charger_id: str) -> tuple[str, bytes]:
    """A new order of ``driver`` for EVSE 1 of ``charger_id``: its id and its start QR."""
    created = api.http.post(
        "/api/v1/orders",
        json={"charger_id": charger_id, "evse_id": 1, "amount": 1_500},
        headers=api.bearer(driver),
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    png = api.http.get(f"/api/v1/orders/{order_id}/qr.png", headers=api.bearer(driver))
    assert png.status_code == 200
    return order_id, png.content


def show_to_camera(page: Page, charger_id: str, png: bytes) -> None:
    """Through the page's simulator controls: the charger's camera sees ``png``."""
    page.evaluate("location.hash = '#/chargers'")
    page.wait_for_selector("body[data-loaded=chargers]", state="attached")
    page.set_input_files(
        f"#camera-{charger_id}", files=[{"name": "qr.png", "mimeType": "image/png", "buffer": png}]
    )


@VERSIONS
def test_a_reservation_for_an_order_refuses_a_foreign_start_qr(
    charger_id: str, demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    mine, mine_qr = order(api, api.new_driver(top_up=10_000), charger_id)
    theirs, theirs_qr = order(api, api.new_driver(top_up=10_000), charger_id)
    page = signed_in(launch, demo, api, "operator")
    charger_page(page, charger_id)
    page.select_option("#command-action", "ReserveNow")
    # the charger's orders waiting to start are offered as what to reserve for
    page.wait_for_selector(f"#open-orders option[value='{mine}']", state="attached")
    where = "connector" if charger_id == "DEMO-03" else "evse"
    assert send(page, "ReserveNow", {where: "1", "id_tag": mine}) == "Accepted"
    made = "#command-answer [data-reservation-id]"
    reservation_id = page.get_attribute(made, "data-reservation-id")
    row = f"#list-reservations tr[data-reservation='{reservation_id}']"
    page.wait_for_selector(f"{row} [data-reservation-state=active]", timeout=10_000)
    assert mine in page.inner_text(row)
    page.wait_for_selector("#charger-status [data-evse='1'] >> text=Reserved", timeout=10_000)
    if charger_id == "DEMO-04":
        shot(page, "operator-reservation-1280", doc=True)

    # driver B's start QR at the reserved EVSE: refused, with the reason on the screen
    show_to_camera(page, charger_id, theirs_qr)
    page.wait_for_selector("#notice >> text=The charger refused the code: reserved")
    display = api.control(charger_id, "GET", "/display").json()
    assert display["reasons"][-1]["reason"] == "reserved"
    assert not api.control(charger_id, "GET", "/state").json()["transactions"]

    # driver A's own QR starts there and uses the reservation
    api.control(charger_id, "POST", "/evses/1/plug")
    show_to_camera(page, charger_id, mine_qr)
    until(lambda: api.control(charger_id, "GET", "/state").json()["transactions"], timeout=15)
    charger_page(page, charger_id)
    page.wait_for_selector(f"{row} [data-reservation-state=used]", timeout=20_000)
    (used,) = [
        r
        for r in api.admin_get(f"/api/v1/admin/chargers/{charger_id}/reservations")
        if str(r["reservation_id"]) == reservation_id
    ]
    assert (used["id_token"], used["state"]) == (mine, "used") and used["transaction_id"]
    assert theirs != mine
    api.control(charger_id, "POST", "/evses/1/unplug")
    until(lambda: not api.control(charger_id, "GET", "/state").json()["transactions"], timeout=15)


@pytest.fixture(scope="module")
def firmware_url() -> Iterator[str]:
    """A firmware server on 127.0.0.1 (where the demo's chargers download from)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/fw/cp-2.4.1.bin":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(IMAGE)))
            self.end_headers()
            self.wfile.write(IMAGE)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fw/cp-2.4.1.bin"
    finally:
        server.shutdown()
        server.server_close()


@VERSIONS
def test_diagnostics_firmware_and_a_charging_profile_from_the_page(
    charger_id: str, firmware_url: str, demo: Demo, api: Api, launch: Callable[..., Browser]
) -> None:
    v16 = charger_id == "DEMO-03"
    page = signed_in(launch, demo, api, "operator")
    charger_page(page, charger_id)

    # diagnostics (1.6) or a log (2.0.1) with no address: uploaded to the CSMS itself
    assert send(page, "GetDiagnostics" if v16 else "GetLog") == "Accepted"
    upload_id = page.get_attribute("#command-answer [data-upload-id]", "data-upload-id")
    assert upload_id and "Uploaded diagnostics and logs" in page.inner_text("#command-answer")
    page.wait_for_selector(f"#list-uploads tr[data-upload='{upload_id}']", timeout=20_000)
    page.wait_for_selector("#list-diagnostics tr[data-status=Uploaded]", timeout=10_000)
    with page.expect_download() as download:
        page.click(f"#download-{upload_id}")
    path = download.value.path()
    assert download.value.suggested_filename.startswith(charger_id)
    assert charger_id in json.dumps(json.loads(path.read_text("utf-8")))

    # a firmware update: downloaded from the given address, installed, the charger reboots
    status = send(page, "UpdateFirmware", {"location": firmware_url})
    assert status == "Accepted"
    page.wait_for_selector("#list-firmware tr[data-status=Installed]", timeout=30_000)
    steps = page.eval_on_selector_all(
        "#list-firmware tr[data-step=FirmwareStatusNotification]",
        "rows => rows.map((r) => r.dataset.status).reverse()",
    )
    assert steps[0] == "Downloading" and steps[-1] == "Installed", steps
    until(lambda: api.admin_get(f"/api/v1/admin/chargers/{charger_id}")["connected"], timeout=30)
    assert api.control(charger_id, "GET", "/firmware").json()["version"] == "cp-2.4.1"
    if v16:
        shot(page, "operator-firmware-1280", doc=True)

    # a station-wide power limit, what the charger will apply, and clearing it
    purpose = "ChargePointMaxProfile" if v16 else "ChargingStationMaxProfile"
    profile = str(3000 + (0 if v16 else 1))
    fields = {"evse" if not v16 else "connector": "0", "purpose": purpose, "unit": "W",
              "limit": "7400", "profile": profile}  # fmt: skip
    assert send(page, "SetChargingProfile", fields) == "Accepted"
    sent = json.loads(page.text_content("#command-payload") or "{}")
    (kept,) = [
        p["profile"]
        for p in api.admin_get(f"/api/v1/admin/chargers/{charger_id}/charging-profiles")
        if p["profile_id"] == int(profile) and p["cleared_at"] is None
    ]
    assert kept == sent["csChargingProfiles" if v16 else "chargingProfile"]  # as sent
    row = f"#list-charging-profiles tr[data-profile='{profile}']"
    page.wait_for_selector(f"{row}[data-cleared=no] >> text=7400 W", timeout=10_000)
    composite = {"evse" if not v16 else "connector": "1", "duration": "600", "unit": "W"}
    assert send(page, "GetCompositeSchedule", composite) == "Accepted"
    assert "7400 W" in page.inner_text("#command-answer tr[data-period='0']")
    if v16:
        shot(page, "operator-charging-profile-1280", doc=True)
    page.click(f"#clear-profile-{profile}")
    page.wait_for_selector(f"{row}[data-cleared=yes]", timeout=10_000)
    profiles = api.admin_get(f"/api/v1/admin/chargers/{charger_id}/charging-profiles", active=True)
    assert all(p["profile_id"] != int(profile) for p in profiles)
