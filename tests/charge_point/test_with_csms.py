"""End to end against this project's CSMS (``csms.app``): Basic auth, TrustedKeys pushed by the
CSMS and taken by a ``--trust-first-keys`` charger, the settlement key pinned, an offline QR
transaction delivered on reconnect and stored once.

The start token is signed with the CSMS's own active key (what its order service does); the
driver/order API of the CSMS is not used here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from charge_point.charger import Charger
from config.settings import Settings
from csms.app import create_app, server_config
from qr_extension.identify import parse_identification_url, verify_presence_code
from qr_extension.qr import decode_qr
from qr_extension.refusal import Refusal
from qr_extension.start import issue_start_token
from qr_extension.tariff import Limits
from qr_extension.wire import parse_ocpp_timestamp
from tests.charge_point.central import until
from tests.charge_point.conftest import FLAT, station_settings

ADMIN = "cp-e2e-admin-key"
PASSWORD = "cp-e2e-password"


@pytest.fixture
async def project_csms(tmp_path: Path) -> AsyncIterator[tuple[int, httpx.AsyncClient, object]]:
    settings = Settings(
        data_dir=tmp_path / "csms",
        admin_api_key=ADMIN,  # type: ignore[call-arg]
        ocpp_call_timeout_s=3,
    )
    app = create_app(settings)
    server = uvicorn.Server(server_config(settings, app, port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=10,
            headers={"Authorization": f"Bearer {ADMIN}"},
        ) as http:
            yield port, http, app
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_offline_qr_session_with_the_project_csms(
    tmp_path: Path, project_csms: tuple[int, httpx.AsyncClient, object], version: str
) -> None:
    port, http, app = project_csms
    cp_id = f"CP-E2E-{version.replace('.', '')}"
    answer = await http.post(
        "/api/v1/admin/chargers", json={"id": cp_id, "password": PASSWORD, "evses": 2}
    )
    assert answer.status_code == 201, answer.text
    settings = station_settings(
        tmp_path,
        charge_point_id=cp_id,
        ocpp_version=version,
        csms_url=f"ws://127.0.0.1:{port}/ocpp",
        password=PASSWORD,
        trust_first_keys=True,
        time_scale=600,
    )
    charger = Charger(settings)
    station = charger.station
    task = asyncio.create_task(charger.run())
    try:
        await until(lambda: station.online and len(station.trusted) > 0, 15, "boot + keys")
        jwks = (await http.get("/.well-known/jwks.json")).json()
        assert {k.kid for k in station.trusted} == {k["kid"] for k in jwks["keys"]}

        async def pinned() -> list[str]:
            r = await http.get(f"/api/v1/admin/chargers/{cp_id}/settlement-keys")
            return [k.get("kid") for k in r.json()] if r.status_code == 200 else []

        for _ in range(100):
            if station.key.kid in await pinned():
                break
            await asyncio.sleep(0.05)
        assert station.key.kid in await pinned()

        # the CSMS provisions the identification secret; the screen's code then verifies
        r = await http.put(f"/api/v1/admin/chargers/{cp_id}/presence-secret")
        assert r.status_code == 200 and r.json()["installed"], r.text
        secret = r.json()["secret_hex"]
        assert station.config["IdentificationSecret"] == secret.lower()
        station.tick()
        ident = parse_identification_url(station.display.qr_text or "")
        assert ident.code is not None and verify_presence_code(
            bytes.fromhex(secret), ident.code, int(station.now()), step_s=30, digits=6
        )

        charger.link.set_up(False)
        await until(lambda: not station.online, 5, "offline")
        station.plug(1, capacity_wh=60_000, soc=0.3)
        signing = app.state.ctx.keys.active_signing_key(int(time.time()))  # type: ignore[attr-defined]
        token = issue_start_token(
            key=signing,
            charge_point_id=cp_id,
            order_id="E2EORDER1",
            evse_id=1,
            tariff=FLAT,
            limits=Limits(amount=50_000, energy_wh=1200),
            issued_at=int(station.now()),
            validity_s=900,
        )
        scanned = time.time()
        assert not isinstance(station.scan(token), Refusal)
        await until(lambda: station.sessions[1].limit is not None, 10, "energy limit")
        station.unplug(1)
        charger.link.set_up(True)
        await until(lambda: station.online and station.store.queue_len() == 0, 15, "delivered")

        rows = (await http.get("/api/v1/admin/transactions", params={"charger_id": cp_id})).json()
        assert len(rows) == 1, rows
        (txn,) = rows
        assert txn["id_tag"] == "E2EORDER1"
        # at time scale 600 the energy came 600 times sooner, but the start time is true
        started = parse_ocpp_timestamp(txn["started_at"]).timestamp()
        assert abs(started - scanned) < 0.5  # set from the CSMS's clock, a message's delay behind
        if version == "2.0.1":
            assert txn["offline"] is True  # 1.6 has no offline flag
        assert txn["meter_stop_wh"] - txn["meter_start_wh"] == 1200
        assert txn["stop_reason"] == "EVDisconnected"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()


async def test_driver_order_offline_charge_upload_and_sync_pay_once(
    tmp_path: Path, project_csms: tuple[int, httpx.AsyncClient, object]
) -> None:
    """The whole scan-to-pay story with this charger and this CSMS: a driver orders, the start
    QR image from the CSMS is shown to the offline charger's camera, the session ends at its
    energy limit and unplug, the driver uploads the charger's settlement QR and pays, then the
    charger comes back online and delivers the same settlement: the order is paid once."""
    port, http, _ = project_csms
    cp_id = "CP-STORY"
    r = await http.post(
        "/api/v1/admin/chargers", json={"id": cp_id, "password": PASSWORD, "evses": 2}
    )
    assert r.status_code == 201, r.text
    settings = station_settings(
        tmp_path,
        charge_point_id=cp_id,
        ocpp_version="2.0.1",
        csms_url=f"ws://127.0.0.1:{port}/ocpp",
        password=PASSWORD,
        trust_first_keys=True,
        time_scale=600,  # 1 kWh in a fraction of a second; the clocks stay true
    )
    charger = Charger(settings)
    station = charger.station
    task = asyncio.create_task(charger.run())
    try:
        await until(lambda: station.online and len(station.trusted) > 0, 15, "boot + keys")
        driver = {"Authorization": ""}
        r = await http.post(
            "/api/v1/users", json={"email": "d@example.com", "password": "driver-password-1"}
        )
        assert r.status_code == 201, r.text
        r = await http.post(
            "/api/v1/token", data={"username": "d@example.com", "password": "driver-password-1"}
        )
        driver["Authorization"] = f"Bearer {r.json()['access_token']}"
        r = await http.post("/api/v1/me/wallet/top-ups", json={"amount": 60_000}, headers=driver)
        assert r.status_code == 201, r.text
        r = await http.post(
            "/api/v1/orders",
            json={"charger_id": cp_id, "evse_id": 1, "energy_wh": 1000},
            headers=driver,
        )
        assert r.status_code == 201, r.text
        order = r.json()
        qr_png = (await http.get(f"/api/v1/orders/{order['id']}/qr.png", headers=driver)).content

        charger.link.set_up(False)
        await until(lambda: not station.online, 5, "offline")
        station.plug(1, capacity_wh=60_000, soc=0.3)
        answer = charger.present_frame(qr_png)  # the camera sees the driver's phone
        assert answer["accepted"], answer
        await until(lambda: station.sessions[1].limit is not None, 15, "energy limit")
        station.unplug(1)
        (settlement,) = decode_qr(station.display.png())  # the driver scans the screen
        r = await http.post("/api/v1/settlements", json={"token": settlement}, headers=driver)
        assert r.status_code == 200, r.text
        paid = r.json()
        assert paid["order_id"] == order["id"] and paid["energy_wh"] == 1000
        r = await http.post(f"/api/v1/payments/{paid['payment_id']}/confirm", headers=driver)
        assert r.status_code == 200, r.text

        charger.link.set_up(True)  # the charger's copy arrives later
        # an empty queue means the CSMS has answered the Settlement DataTransfer
        await until(lambda: station.online and station.store.queue_len() == 0, 15, "delivered")
        wallet = (await http.get("/api/v1/me/wallet", headers=driver)).json()
        assert wallet["balance"] == 60_000 - paid["amount"] and wallet["held"] == 0
        final = (await http.get(f"/api/v1/orders/{order['id']}", headers=driver)).json()
        assert final["amount"] == paid["amount"] and final["receipt_id"] is not None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()


async def _charger_when(
    http: httpx.AsyncClient, cp_id: str, ready: Any, what: str
) -> dict[str, Any]:
    """The operator's view of the charger once ``ready(view)`` holds (fails after 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        answer = await http.get(f"/api/v1/admin/chargers/{cp_id}")
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        if ready(view):
            return view
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_pending_charger_accepted_while_connected_works_at_once(
    tmp_path: Path, project_csms: tuple[int, httpx.AsyncClient, object], version: str
) -> None:
    """The operator keeps a charger Pending, then accepts it while it is connected: the CSMS
    asks it to boot (TriggerMessage), it boots at once instead of after the boot interval
    (300 s here), and works: keys taken, settlement key pinned."""
    port, http, _ = project_csms
    cp_id = f"CP-PENDING-{version.replace('.', '')}"
    r = await http.post("/api/v1/admin/chargers", json={"id": cp_id, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await http.patch(f"/api/v1/admin/chargers/{cp_id}", json={"registration": "Pending"})
    assert r.status_code == 200, r.text
    settings = station_settings(
        tmp_path,
        charge_point_id=cp_id,
        ocpp_version=version,
        csms_url=f"ws://127.0.0.1:{port}/ocpp",
        password=PASSWORD,
        trust_first_keys=True,
    )
    charger = Charger(settings)
    station = charger.station
    task = asyncio.create_task(charger.run())
    try:
        view = await _charger_when(http, cp_id, lambda v: v["vendor"], "the Pending boot")
        assert view["vendor"] == "qrcharge" and view["connected"] is True
        assert not station.online and charger.link.connects == 0 and len(station.trusted) == 0
        r = await http.patch(f"/api/v1/admin/chargers/{cp_id}", json={"registration": "Accepted"})
        assert r.status_code == 200, r.text
        await until(lambda: station.online and len(station.trusted) > 0, 10, "accepted at once")
        assert charger.link.connects == 1
        kid = station.key.kid
        await _charger_when(http, cp_id, lambda v: v["settlement_kid"] == kid, "the key")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()
