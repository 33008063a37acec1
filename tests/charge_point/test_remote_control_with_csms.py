"""The operator's remote control of the reference charger, end to end over a real socket:
ChangeAvailability, TriggerMessage, ClearCache, GetLocalListVersion, ReserveNow and
CancelReservation sent through the CSMS's commands endpoint on OCPP 1.6 and 2.0.1, the
reservations the CSMS keeps, answers forced through the charger's control API, and a reserved
EVSE refusing another driver's start QR while its own driver's order starts and uses it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from charge_point.charger import Charger
from charge_point.control import create_app as control_app
from charge_point.evse import Status
from qr_extension.wire import ocpp_timestamp
from tests.charge_point.central import until
from tests.charge_point.conftest import station_settings
from tests.charge_point.test_with_csms import PASSWORD, project_csms

__all__ = ["project_csms"]  # the fixture, used by name

CsmsFixture = tuple[int, httpx.AsyncClient, object]
CARDS = ("CARD-1", "CARD-R", "CARD-X")


class Running:
    """A reference charger connected to the project's CSMS, with its control API client."""

    def __init__(self, charger: Charger, http: httpx.AsyncClient, control: httpx.AsyncClient):
        self.charger = charger
        self.station = charger.station
        self.http = http
        self.control = control
        self.id = charger.station.id
        self.version = charger.settings.ocpp_version

    async def command(self, action: str, payload: dict[str, Any]) -> httpx.Response:
        return await self.http.post(
            f"/api/v1/admin/chargers/{self.id}/commands/{action}", json=payload
        )

    async def answer(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        r = await self.command(action, payload)
        assert r.status_code == 200, (action, r.text)
        return r.json()  # type: ignore[no-any-return]

    async def frames(self, action: str) -> list[dict[str, Any]]:
        """The charger's CALLs of ``action`` in the CSMS's message log."""
        r = await self.http.get(
            f"/api/v1/admin/chargers/{self.id}/messages", params={"limit": 1000}
        )
        calls = [json.loads(f["frame"]) for f in r.json()]
        return [c for c in calls if c[0] == 2 and c[2] == action]

    async def reservations(self) -> list[dict[str, Any]]:
        r = await self.http.get(f"/api/v1/admin/chargers/{self.id}/reservations")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def evse_status(self, evse_id: int) -> str | None:
        view = (await self.http.get(f"/api/v1/admin/chargers/{self.id}")).json()
        return next((e["status"] for e in view["evses"] if e["evse_id"] == evse_id), None)

    def reserve_payload(
        self, token: str, evse_id: int | None, expires_in_s: float, reservation_id: int | None
    ) -> dict[str, Any]:
        expiry = ocpp_timestamp(time.time() + expires_in_s)
        payload: dict[str, Any]
        if self.version == "1.6":
            payload = {"connectorId": evse_id or 0, "expiryDate": expiry, "idTag": token}
            if reservation_id is not None:
                payload["reservationId"] = reservation_id
        else:
            payload = {"expiryDateTime": expiry, "idToken": {"idToken": token, "type": "Central"}}
            if evse_id is not None:
                payload["evseId"] = evse_id
            if reservation_id is not None:
                payload["id"] = reservation_id
        return payload

    async def reserve(
        self,
        token: str,
        evse_id: int | None = 1,
        *,
        expires_in_s: float = 600,
        reservation_id: int | None = None,
    ) -> httpx.Response:
        payload = self.reserve_payload(token, evse_id, expires_in_s, reservation_id)
        return await self.command("ReserveNow", payload)


async def _running(
    tmp_path: Path, csms: CsmsFixture, version: str, cp_id: str, *, register: bool = True
) -> AsyncIterator[Running]:
    port, http, _ = csms
    if register:
        r = await http.post(
            "/api/v1/admin/chargers", json={"id": cp_id, "password": PASSWORD, "evses": 2}
        )
        assert r.status_code == 201, r.text
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
    task = asyncio.create_task(charger.run())
    transport = httpx.ASGITransport(app=control_app(charger))
    try:
        for card in CARDS:  # the operator's RFID cards
            r = await http.put("/api/v1/admin/id-tags", json={"id_tag": card})
            assert r.status_code == 200, r.text
        async with httpx.AsyncClient(transport=transport, base_url="http://cp") as control:
            await until(lambda: charger.station.online, 15, "boot")
            yield Running(charger, http, control)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()


@pytest.fixture(params=["1.6", "2.0.1"])
async def cp(
    request: pytest.FixtureRequest, tmp_path: Path, project_csms: CsmsFixture
) -> AsyncIterator[Running]:
    cp_id = f"CP-RC-{request.param.replace('.', '')}"
    async for running in _running(tmp_path, project_csms, request.param, cp_id):
        yield running


def _availability(version: str, evse_id: int | None, operative: bool) -> dict[str, Any]:
    word = "Operative" if operative else "Inoperative"
    if version == "1.6":
        return {"connectorId": evse_id or 0, "type": word}
    payload: dict[str, Any] = {"operationalStatus": word}
    if evse_id is not None:
        payload["evse"] = {"id": evse_id}
    return payload


async def test_change_availability(cp: Running) -> None:
    station = cp.station
    answer = await cp.answer("ChangeAvailability", _availability(cp.version, 2, False))
    assert answer["response"] == {"status": "Accepted"}
    assert station.connectors[2].status is Status.UNAVAILABLE
    await until_async(lambda: cp.evse_status(2), "Unavailable")

    # a transaction on EVSE 1: taking the whole charger out of service is Scheduled
    station.plug(1)
    r = await cp.control.post("/evses/1/rfid", json={"id_tag": "CARD-1"})
    assert r.json()["accepted"], r.text
    answer = await cp.answer("ChangeAvailability", _availability(cp.version, None, False))
    assert answer["response"] == {"status": "Scheduled"}
    assert station.connectors[1].status is Status.CHARGING
    assert station.press_stop(1)  # the transaction ends: now it goes out of service
    assert station.connectors[1].status is Status.UNAVAILABLE
    await until_async(lambda: cp.evse_status(1), "Unavailable")
    state = (await cp.control.get("/state")).json()
    assert state["inoperative"] == {"station": True, "evses": [2]}

    # the station operative again: EVSE 2 was taken out on its own and stays out
    answer = await cp.answer("ChangeAvailability", _availability(cp.version, None, True))
    assert answer["response"] == {"status": "Accepted"}
    assert station.connectors[1].status is Status.PREPARING  # the EV is still plugged in
    assert station.connectors[2].status is Status.UNAVAILABLE
    answer = await cp.answer("ChangeAvailability", _availability(cp.version, 7, True))
    assert answer["response"] == {"status": "Rejected"}  # no EVSE 7


async def until_async(read: Any, expected: Any, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while (value := await read()) != expected:
        assert time.monotonic() < deadline, f"still {value!r}, not {expected!r}"
        await asyncio.sleep(0.02)


async def test_trigger_message_clear_cache_and_local_list_version(cp: Running) -> None:
    await until_async(lambda: _count(cp, "StatusNotification"), 2)  # both EVSEs after boot
    for what in ("StatusNotification", "Heartbeat", "MeterValues", "BootNotification"):
        before = len(await cp.frames(what))
        payload: dict[str, Any] = {"requestedMessage": what}
        if what in ("StatusNotification", "MeterValues"):
            payload.update({"connectorId": 2} if cp.version == "1.6" else {"evse": {"id": 2}})
        answer = await cp.answer("TriggerMessage", payload)
        assert answer["response"] == {"status": "Accepted"}, what
        await until_async(lambda w=what: _count(cp, w), before + 1)
        (*_, sent) = await cp.frames(what)
        if what == "StatusNotification":
            assert sent[3]["connectorId" if cp.version == "1.6" else "evseId"] == 2
    assert cp.station.online  # a triggered boot answered Accepted changes nothing
    bad_evse = {"connectorId": 9} if cp.version == "1.6" else {"evse": {"id": 9}}
    answer = await cp.answer(
        "TriggerMessage", {"requestedMessage": "StatusNotification", **bad_evse}
    )
    assert answer["response"] == {"status": "Rejected"}
    if cp.version == "2.0.1":  # a message this charger does not send on request
        answer = await cp.answer("TriggerMessage", {"requestedMessage": "SignV2GCertificate"})
        assert answer["response"] == {"status": "NotImplemented"}
    await _clear_cache_and_local_list_version(cp)


async def _count(cp: Running, action: str) -> int:
    return len(await cp.frames(action))


async def _clear_cache_and_local_list_version(cp: Running) -> None:
    store = cp.station.store
    cp.station.remember_tag("CARD-9", "Accepted", None)
    assert store.cached("CARD-9") is not None
    answer = await cp.answer("ClearCache", {})
    assert answer["response"] == {"status": "Accepted"}
    assert store.cached("CARD-9") is None

    key = "listVersion" if cp.version == "1.6" else "versionNumber"
    answer = await cp.answer("GetLocalListVersion", {})
    assert answer["response"] == {key: 0}
    entry = (
        {"idTag": "CARD-5", "idTagInfo": {"status": "Accepted"}}
        if cp.version == "1.6"
        else {
            "idToken": {"idToken": "CARD-5", "type": "ISO14443"},
            "idTokenInfo": {"status": "Accepted"},
        }
    )
    answer = await cp.answer(
        "SendLocalList", {key: 5, "updateType": "Full", "localAuthorizationList": [entry]}
    )
    assert answer["response"] == {"status": "Accepted"}
    answer = await cp.answer("GetLocalListVersion", {})
    assert answer["response"] == {key: 5}


async def test_reserve_and_cancel(cp: Running) -> None:
    station = cp.station
    r = await cp.reserve("CARD-R", 1)  # no reservation id: the CSMS makes one
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["response"] == {"status": "Accepted"}
    reservation_id = body["reservation_id"]
    assert isinstance(reservation_id, int) and reservation_id > 0
    assert station.connectors[1].status is Status.RESERVED
    await until_async(lambda: cp.evse_status(1), "Reserved")
    (kept,) = await cp.reservations()
    assert kept["reservation_id"] == reservation_id and kept["state"] == "active"
    assert kept["evse_id"] == 1 and kept["id_token"] == "CARD-R"

    # another card is refused at the reserved EVSE, with the reason on the screen
    station.plug(1)
    r = await cp.control.post("/evses/1/rfid", json={"id_tag": "CARD-X"})
    assert r.json()["accepted"] is False
    display = (await cp.control.get("/display")).json()
    assert display["reasons"][-1]["reason"] == "reserved"
    # a second reservation of the same EVSE: Occupied
    r = await cp.reserve("CARD-S", 1, reservation_id=77)
    assert r.json()["response"] == {"status": "Occupied"}

    answer = await cp.answer("CancelReservation", {"reservationId": reservation_id})
    assert answer["response"] == {"status": "Accepted"}
    assert station.connectors[1].status is Status.PREPARING  # the EV parked there
    answer = await cp.answer("CancelReservation", {"reservationId": reservation_id})
    assert answer["response"] == {"status": "Rejected"}
    states = {k["reservation_id"]: (k["state"], k["answer"]) for k in await cp.reservations()}
    assert states == {reservation_id: ("cancelled", "Accepted"), 77: ("refused", "Occupied")}

    # the reserved card starts and uses its reservation; the transaction carries its id
    station.unplug(1)
    r = await cp.reserve("CARD-R", 2, reservation_id=78)
    assert r.json()["response"] == {"status": "Accepted"}
    station.plug(2)
    r = await cp.control.post("/evses/2/rfid", json={"id_tag": "CARD-R"})
    assert r.json()["accepted"] is True
    assert station.connectors[2].status is Status.CHARGING
    await until(lambda: station.store.queue_len() == 0, 10, "the start delivered")
    used = await _reservation(cp, 78, lambda k: k["state"] == "used")
    assert used["transaction_id"]


async def _reservation(cp: Running, reservation_id: int, ready: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        kept = {k["reservation_id"]: k for k in await cp.reservations()}
        if reservation_id in kept and ready(kept[reservation_id]):
            return kept[reservation_id]
        assert time.monotonic() < deadline, kept.get(reservation_id)
        await asyncio.sleep(0.02)


async def test_a_reservation_expires(cp: Running) -> None:
    r = await cp.reserve("CARD-E", 1, expires_in_s=1.5, reservation_id=5)
    assert r.json()["response"] == {"status": "Accepted"}
    assert cp.station.connectors[1].status is Status.RESERVED
    await until(lambda: cp.station.connectors[1].status is Status.AVAILABLE, 10, "expiry")
    await until_async(lambda: cp.evse_status(1), "Available")
    expired = await _reservation(cp, 5, lambda k: k["state"] == "expired")
    if cp.version == "2.0.1":  # the charger said so (1.6 has no message: the time says it)
        (update,) = await cp.frames("ReservationStatusUpdate")
        assert update[3] == {"reservationId": 5, "reservationUpdateStatus": "Expired"}
    assert expired["answer"] == "Accepted"
    r = await cp.http.get(
        f"/api/v1/admin/chargers/{cp.id}/reservations", params={"state": "expired"}
    )
    assert [k["reservation_id"] for k in r.json()] == [5]


async def test_answers_forced_through_the_control_api(cp: Running) -> None:
    for status in ("Occupied", "Faulted", "Unavailable", "Rejected"):
        r = await cp.control.post(
            "/faults/commands", json={"action": "ReserveNow", "status": status, "times": 1}
        )
        assert r.status_code == 200, r.text
        r = await cp.reserve("CARD-F", 1)
        assert r.json()["response"] == {"status": status}
        assert cp.station.connectors[1].status is Status.AVAILABLE  # nothing reserved
    r = await cp.control.get("/faults/commands")
    assert r.json() == []  # each was for one request
    r = await cp.control.post(
        "/faults/commands", json={"action": "ReserveNow", "error": "NotImplemented"}
    )
    assert r.status_code == 200
    r = await cp.reserve("CARD-F", 1, reservation_id=9)
    assert r.status_code == 502 and r.json()["error_code"] == "NotImplemented"
    r = await cp.reserve("CARD-F", 1, reservation_id=10)  # until cleared
    assert r.status_code == 502
    await cp.control.delete("/faults/commands")
    r = await cp.reserve("CARD-F", 1, reservation_id=11)
    assert r.json()["response"] == {"status": "Accepted"}
    answers = {k["reservation_id"]: (k["state"], k["answer"]) for k in await cp.reservations()}
    assert answers[9] == ("refused", "NotImplemented")
    assert answers[11] == ("active", "Accepted")
    assert sorted(a for _, a in answers.values()) == sorted(
        ["Occupied", "Faulted", "Unavailable", "Rejected", "Accepted", *["NotImplemented"] * 2]
    )

    r = await cp.control.post(
        "/faults/commands", json={"action": "ChangeAvailability", "status": "Rejected"}
    )
    assert r.status_code == 200
    answer = await cp.answer("ChangeAvailability", _availability(cp.version, 2, False))
    assert answer["response"] == {"status": "Rejected"}
    assert cp.station.connectors[2].status is Status.AVAILABLE
    # statuses the answer cannot have, and actions of no OCPP version, are refused
    for wrong in (
        {"action": "ReserveNow", "status": "Maybe"},
        {"action": "Teleport", "status": "Accepted"},
        {"action": "ReserveNow"},
        {"action": "ReserveNow", "error": "Oops"},
    ):
        r = await cp.control.post("/faults/commands", json=wrong)
        assert r.status_code == 422, wrong


async def _driver(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    r = await http.post("/api/v1/users", json={"email": email, "password": "driver-password-1"})
    assert r.status_code == 201, r.text
    r = await http.post("/api/v1/token", data={"username": email, "password": "driver-password-1"})
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await http.post("/api/v1/me/wallet/top-ups", json={"amount": 60_000}, headers=headers)
    assert r.status_code == 201, r.text
    return headers


async def _order_qr(
    http: httpx.AsyncClient, cp_id: str, driver: dict[str, str]
) -> tuple[str, bytes]:
    r = await http.post(
        "/api/v1/orders",
        json={"charger_id": cp_id, "evse_id": 1, "energy_wh": 1000},
        headers=driver,
    )
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    png = (await http.get(f"/api/v1/orders/{order_id}/qr.png", headers=driver)).content
    return order_id, png


async def test_a_reserved_evse_refuses_another_drivers_start_qr(cp: Running) -> None:
    """EVSE 1 is reserved for driver A's order; driver B's order for the same EVSE is shown
    to the camera and refused ``reserved``; A's own order then starts there and uses it."""
    mine, mine_qr = await _order_qr(cp.http, cp.id, await _driver(cp.http, "a@example.com"))
    theirs, theirs_qr = await _order_qr(cp.http, cp.id, await _driver(cp.http, "b@example.com"))
    r = await cp.reserve(mine, 1, reservation_id=4242)
    assert r.json()["response"] == {"status": "Accepted"}

    r = await cp.control.post("/camera", content=theirs_qr)  # no EV plugged in yet
    assert r.json()["accepted"] is False and r.json()["reason"] == "reserved", r.text
    cp.station.plug(1)
    r = await cp.control.post("/camera", content=theirs_qr)
    assert r.json()["accepted"] is False and r.json()["reason"] == "reserved", r.text
    display = (await cp.control.get("/display")).json()
    assert display["reasons"][-1]["reason"] == "reserved"
    assert cp.station.connectors[1].status is Status.RESERVED

    r = await cp.control.post("/camera", content=mine_qr)
    assert r.json() == {"accepted": True, "order_id": mine, "evse_id": 1}
    assert cp.station.connectors[1].status is Status.CHARGING
    assert len(cp.station.reservations) == 0
    await until(lambda: cp.station.store.queue_len() == 0, 10, "the start delivered")
    used = await _reservation(cp, 4242, lambda k: k["state"] == "used")
    assert used["id_token"] == mine and used["transaction_id"]
    rows = (await cp.http.get("/api/v1/admin/transactions", params={"charger_id": cp.id})).json()
    assert [t["id_tag"] for t in rows] == [mine] and theirs != mine


async def test_reservations_and_availability_survive_a_restart(
    tmp_path: Path, project_csms: CsmsFixture
) -> None:
    """Like a real charger, what the CSMS asked for is kept: after a restart the reserved EVSE
    is still Reserved and the EVSE taken out of service still Unavailable."""
    gen = _running(tmp_path, project_csms, "2.0.1", "CP-RC-RESTART")
    cp = await anext(gen)
    try:
        r = await cp.reserve("CARD-K", 1, reservation_id=31)
        assert r.json()["response"] == {"status": "Accepted"}
        answer = await cp.answer("ChangeAvailability", _availability("2.0.1", 2, False))
        assert answer["response"] == {"status": "Accepted"}
    finally:
        await gen.aclose()
    gen = _running(tmp_path, project_csms, "2.0.1", "CP-RC-RESTART", register=False)
    cp = await anext(gen)
    try:
        assert cp.station.connectors[1].status is Status.RESERVED
        assert cp.station.connectors[2].status is Status.UNAVAILABLE
        await until_async(lambda: cp.evse_status(1), "Reserved")
        await until_async(lambda: cp.evse_status(2), "Unavailable")
    finally:
        await gen.aclose()
