"""Reservations through the operator's commands endpoint with chargers we did not write (the
``ocpp`` library's own ChargePoint): the CSMS keeps each reservation with whatever the charger
answered (a status, a CALLERROR, nothing), and marks it used, expired or removed from what the
charger reports afterwards. A charger that refuses or does not implement a command is a clean
4xx/5xx answer with the reason, never a 500."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth, make_settings, serve

EXPIRY = "2030-01-01T00:00:00.000Z"


class Refusing16(Client16):  # type: ignore[misc]
    """Answers ReserveNow ``Rejected``; has no CancelReservation or ChangeAvailability."""

    @on("ReserveNow")
    def on_reserve_now(self, **kw: Any) -> Any:
        self._note("ReserveNow", **kw)
        return result16.ReserveNow(status="Rejected")


class Accepting16(Client16):  # type: ignore[misc]
    @on("ReserveNow")
    def on_reserve_now(self, **kw: Any) -> Any:
        self._note("ReserveNow", **kw)
        return result16.ReserveNow(status="Accepted")

    @on("CancelReservation")
    def on_cancel(self, reservation_id: int) -> Any:
        return result16.CancelReservation(status="Accepted")

    @on("ChangeAvailability")
    def on_change_availability(self, connector_id: int, type: str) -> Any:
        return result16.ChangeAvailability(status="Scheduled")


class Accepting201(Client201):  # type: ignore[misc]
    @on("ReserveNow")
    def on_reserve_now(self, **kw: Any) -> Any:
        self._note("ReserveNow", **kw)
        return result201.ReserveNow(status="Accepted")

    @on("ChangeAvailability")
    def on_change_availability(self, **kw: Any) -> Any:
        return result201.ChangeAvailability(status="Rejected")


async def _kept(csms: LiveCsms, charger_id: str, **params: Any) -> dict[int, dict[str, Any]]:
    r = await csms.http.get(f"/api/v1/admin/chargers/{charger_id}/reservations", params=params)
    assert r.status_code == 200, r.text
    return {k["reservation_id"]: k for k in r.json()}


async def test_a_charger_that_refuses_or_lacks_the_commands(csms: LiveCsms) -> None:
    await csms.add_charger("PLAIN")
    url = "/api/v1/admin/chargers/PLAIN/commands"
    reserve = {"connectorId": 1, "expiryDate": EXPIRY, "idTag": "TAG1", "reservationId": 5}
    async with connect(csms.ws_url("PLAIN"), Refusing16, "ocpp1.6", basic_auth("PLAIN")):
        r = await csms.http.post(f"{url}/ReserveNow", json=reserve)
        assert r.status_code == 200 and r.json()["response"] == {"status": "Rejected"}
        assert r.json()["reservation_id"] == 5
        for action, payload in (
            ("CancelReservation", {"reservationId": 5}),
            ("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}),
        ):
            r = await csms.http.post(f"{url}/{action}", json=payload)
            assert r.status_code == 502, (action, r.text)
            assert r.json()["error_code"] == "NotImplemented"
    kept = await _kept(csms, "PLAIN")
    assert (kept[5]["state"], kept[5]["answer"]) == ("refused", "Rejected")


async def test_invalid_or_unsendable_reservations_are_not_kept(csms: LiveCsms) -> None:
    await csms.add_charger("INV")
    url = "/api/v1/admin/chargers/INV/commands"
    r = await csms.http.post(f"{url}/ReserveNow", json={"connectorId": 1, "expiryDate": EXPIRY})
    assert r.status_code == 409  # not connected: the version is not known to check against
    async with connect(csms.ws_url("INV"), Accepting16, "ocpp1.6", basic_auth("INV")) as cp:
        r = await csms.http.post(f"{url}/ReserveNow", json={"connectorId": 1, "expiryDate": EXPIRY})
        assert r.status_code == 422 and "invalid ReserveNow request" in r.json()["detail"]
        bad_time = {"connectorId": 1, "expiryDate": "tomorrow", "idTag": "T"}
        r = await csms.http.post(f"{url}/ReserveNow", json=bad_time)
        assert r.status_code == 422, r.text
        assert cp.received == []
    r = await csms.http.get("/api/v1/admin/chargers/NOPE/reservations")
    assert r.status_code == 404
    assert await _kept(csms, "INV") == {}


async def test_16_reservation_used_by_start_transaction(csms: LiveCsms) -> None:
    await csms.add_charger("R16")
    url = "/api/v1/admin/chargers/R16/commands"
    async with connect(csms.ws_url("R16"), Accepting16, "ocpp1.6", basic_auth("R16")) as cp:
        await cp.call(call16.BootNotification(charge_point_model="m", charge_point_vendor="v"))
        reserve = {"connectorId": 2, "expiryDate": EXPIRY, "idTag": "TAG16"}
        r = await csms.http.post(f"{url}/ReserveNow", json=reserve)
        assert r.status_code == 200, r.text
        reservation_id = r.json()["reservation_id"]
        (_, sent), *_ = cp.received
        assert sent["reservation_id"] == reservation_id  # the generated id went on the wire
        r = await csms.http.post(f"{url}/ReserveNow", json={**reserve, "reservationId": 6})
        r = await csms.http.post(f"{url}/CancelReservation", json={"reservationId": 6})
        assert r.json()["response"] == {"status": "Accepted"}
        r = await csms.http.post(
            f"{url}/ChangeAvailability", json={"connectorId": 1, "type": "Inoperative"}
        )
        assert r.json()["response"] == {"status": "Scheduled"}
        answer = await cp.call(
            call16.StartTransaction(
                connector_id=2,
                id_tag="TAG16",
                meter_start=0,
                timestamp="2026-12-06T12:00:00.000Z",
                reservation_id=reservation_id,
            )
        )
    kept = await _kept(csms, "R16")
    assert kept[reservation_id]["state"] == "used"
    assert kept[reservation_id]["transaction_id"] == str(answer.transaction_id)
    assert kept[reservation_id]["evse_id"] == 2 and kept[reservation_id]["id_token"] == "TAG16"
    assert kept[6]["state"] == "cancelled"
    assert list(await _kept(csms, "R16", state="used")) == [reservation_id]


async def test_201_reservation_removed_and_used(csms: LiveCsms) -> None:
    await csms.add_charger("R201")
    url = "/api/v1/admin/chargers/R201/commands"
    token = {"idToken": "TAG201", "type": "ISO14443"}
    async with connect(csms.ws_url("R201"), Accepting201, "ocpp2.0.1", basic_auth("R201")) as cp:
        await cp.call(
            call201.BootNotification(
                charging_station={"model": "m", "vendor_name": "v"}, reason="PowerUp"
            )
        )
        for rid in (11, 12):
            r = await csms.http.post(
                f"{url}/ReserveNow",
                json={"id": rid, "expiryDateTime": EXPIRY, "idToken": token, "evseId": 1},
            )
            assert r.json() == {
                "charger_id": "R201",
                "action": "ReserveNow",
                "response": {"status": "Accepted"},
                "request_id": None,
                "reservation_id": rid,
                "upload_id": None,
            }
        await cp.call(
            call201.ReservationStatusUpdate(reservation_id=11, reservation_update_status="Removed")
        )
        await cp.call(
            call201.TransactionEvent(
                event_type="Started",
                timestamp="2026-12-06T12:00:00.000Z",
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info={"transaction_id": "TX-R"},
                id_token=token,
                evse={"id": 1, "connector_id": 1},
                reservation_id=12,
            )
        )
        r = await csms.http.post(
            f"{url}/ChangeAvailability", json={"operationalStatus": "Inoperative"}
        )
        assert r.json()["response"] == {"status": "Rejected"}
    kept = await _kept(csms, "R201")
    assert kept[11]["state"] == "removed"
    assert (kept[12]["state"], kept[12]["transaction_id"]) == ("used", "TX-R")
    assert kept[12]["id_token_type"] == "ISO14443"


async def test_a_reservation_without_answer_is_kept(tmp_path: Any) -> None:
    class Silent(Client16):  # type: ignore[misc]
        async def route_message(self, raw_msg: str) -> None:
            if '"ReserveNow"' not in raw_msg:
                await super().route_message(raw_msg)

    async with serve(make_settings(tmp_path, ocpp_call_timeout_s=0.5)) as csms:
        await csms.add_charger("MUTE")
        async with connect(csms.ws_url("MUTE"), Silent, "ocpp1.6", basic_auth("MUTE")):
            r = await csms.http.post(
                "/api/v1/admin/chargers/MUTE/commands/ReserveNow",
                json={"connectorId": 0, "expiryDate": EXPIRY, "idTag": "T", "reservationId": 1},
            )
            assert r.status_code == 504
        kept = await _kept(csms, "MUTE")
    assert (kept[1]["state"], kept[1]["answer"], kept[1]["evse_id"]) == (
        "requested",
        "NoAnswer",
        None,
    )
