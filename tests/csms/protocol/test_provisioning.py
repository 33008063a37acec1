"""Boot, heartbeat, status and the TrustedKeys push, end to end over a real WebSocket."""

from __future__ import annotations

import asyncio
import json
import re

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from qr_extension.keys import KeyRing
from qr_extension.trust import verify_trusted_keys
from qr_extension.wire import MSG_TRUSTED_KEYS, VENDOR_ID

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth

OCPP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_boot_heartbeat_status_16(csms: LiveCsms) -> None:
    await csms.add_charger("CP16")
    async with connect(csms.ws_url("CP16"), Client16, "ocpp1.6", basic_auth("CP16")) as cp:
        boot = await cp.call(
            call16.BootNotification(charge_point_model="M1", charge_point_vendor="V1"),
            suppress=False,
        )
        assert boot.status == "Accepted"
        assert boot.interval == 120
        assert OCPP_TIME.match(boot.current_time)
        beat = await cp.call(call16.Heartbeat(), suppress=False)
        assert OCPP_TIME.match(beat.current_time)
        await cp.call(
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
            suppress=False,
        )
        pushed = await asyncio.wait_for(cp.data_transfers.get(), 5)
        charger = (await csms.http.get("/api/v1/admin/chargers/CP16")).json()
    assert pushed["vendor_id"] == VENDOR_ID and pushed["message_id"] == MSG_TRUSTED_KEYS
    jwks = (await csms.http.get("/.well-known/jwks.json")).json()
    ring = verify_trusted_keys(pushed["data"], trusted=KeyRing.from_jwks(jwks))
    assert isinstance(ring, KeyRing) and {k.kid for k in ring} == {k["kid"] for k in jwks["keys"]}
    assert charger["connected"] is True and charger["online"] is True
    assert charger["vendor"] == "V1" and charger["ocpp_version"] == "1.6"
    assert [(e["evse_id"], e["status"]) for e in charger["evses"]] == [
        (1, "Available"),
        (2, "Unknown"),
    ]


async def test_boot_and_status_201(csms: LiveCsms) -> None:
    await csms.add_charger("CP201", evses=1)
    async with connect(csms.ws_url("CP201"), Client201, "ocpp2.0.1", basic_auth("CP201")) as cp:
        boot = await cp.call(
            call201.BootNotification(
                charging_station={"model": "M2", "vendor_name": "V2"}, reason="PowerUp"
            ),
            suppress=False,
        )
        assert boot.status == "Accepted" and OCPP_TIME.match(boot.current_time)
        await cp.call(
            call201.StatusNotification(
                timestamp="2026-11-26T10:00:00.000Z",
                connector_status="Occupied",
                evse_id=1,
                connector_id=1,
            ),
            suppress=False,
        )
        # an older status delivered late does not overwrite the newer one
        await cp.call(
            call201.StatusNotification(
                timestamp="2026-11-26T09:00:00.000Z",
                connector_status="Available",
                evse_id=1,
                connector_id=1,
            ),
            suppress=False,
        )
        pushed = await asyncio.wait_for(cp.data_transfers.get(), 5)
        assert pushed["message_id"] == MSG_TRUSTED_KEYS
        charger = (await csms.http.get("/api/v1/admin/chargers/CP201")).json()
    assert charger["ocpp_version"] == "2.0.1"
    assert [(e["evse_id"], e["status"]) for e in charger["evses"]] == [(1, "Occupied")]
    await asyncio.sleep(0)  # let the server notice the disconnect
    for _ in range(100):
        charger = (await csms.http.get("/api/v1/admin/chargers/CP201")).json()
        if not charger["online"]:
            break
        await asyncio.sleep(0.02)
    assert charger["online"] is False and charger["connected"] is False
    frames = (await csms.http.get("/api/v1/admin/chargers/CP201/messages")).json()
    actions = [json.loads(f["frame"])[2] for f in frames if json.loads(f["frame"])[0] == 2]
    assert actions[0] == "BootNotification"
    assert sorted(actions[1:]) == ["DataTransfer", "StatusNotification", "StatusNotification"]


async def test_any_frame_updates_last_seen(csms: LiveCsms) -> None:
    await csms.add_charger("SEEN1")
    async with connect(csms.ws_url("SEEN1"), Client16, "ocpp1.6", basic_auth("SEEN1")) as cp:
        await cp.call(
            call16.BootNotification(charge_point_model="M1", charge_point_vendor="V1"),
            suppress=False,
        )
        await csms.ctx.writer.flush_touches()
        booted = (await csms.http.get("/api/v1/admin/chargers/SEEN1")).json()["last_seen"]
        await asyncio.sleep(0.05)
        await cp.call(call16.Authorize(id_tag="NOBODY"), suppress=False)  # not a heartbeat
        await csms.ctx.writer.flush_touches()
        later = (await csms.http.get("/api/v1/admin/chargers/SEEN1")).json()["last_seen"]
    assert booted is not None and later is not None and later > booted
