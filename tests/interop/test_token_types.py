"""The 2.0.1 charger keeps the idToken type a token came with, from Authorize to the end of the
session, against a central system that keys tokens on (value, type) as the specification does
(``TokenKeyed201`` answers ``Unknown`` for any other pair, and the charger would then end the
session as ``DeAuthorized``)."""

from __future__ import annotations

import asyncio
from typing import Any

from ocpp.v201 import call as call201

from charge_point.charger import Charger
from charge_point.events import Kind
from charge_point.protocol.commands import CommandContext
from charge_point.protocol.v201 import Adapter201
from charge_point.store import QueuedMessage
from qr_extension.refusal import Refusal
from tests.charge_point.central import until
from tests.charge_point.conftest import CP_ID, TokenFactory
from tests.interop.centrals import Seen, TokenKeyed201
from tests.interop.conftest import Run


def started(seen: Seen) -> list[dict[str, Any]]:
    return [e for e in seen.of("TransactionEvent") if e["eventType"] == "Started"]


async def answered_and_still_charging(charger: Charger, seen: Seen, evse_id: int) -> None:
    """The Started event was answered (the queue is empty) and the session goes on."""
    await until(lambda: charger.store.queue_len() == 0, what="the Started event answered")
    await asyncio.sleep(0.2)
    assert evse_id in charger.station.sessions, "the CSMS refused the token: DeAuthorized"


async def test_a_card_keeps_its_type_from_authorize_to_the_transaction(run_against: Run) -> None:
    async with run_against(None, TokenKeyed201, "2.0.1") as (charger, seen):
        charger.station.plug(1)
        answer = await charger.present_id_tag(1, "CARD01")
        assert answer["accepted"] is True
        (authorize,) = seen.of("Authorize")
        assert authorize["idToken"] == {"idToken": "CARD01", "type": "ISO14443"}
        await until(lambda: started(seen), what="Started")
        assert started(seen)[0]["idToken"] == {"idToken": "CARD01", "type": "ISO14443"}
        await answered_and_still_charging(charger, seen, 1)


async def test_a_card_type_given_at_the_reader_is_kept(run_against: Run) -> None:
    async with run_against(None, TokenKeyed201, "2.0.1", card_token_type="ISO15693") as (
        charger,
        seen,
    ):
        charger.station.plug(1)
        assert (await charger.present_id_tag(1, "CARD01", "ISO14443"))["accepted"] is True
        await until(lambda: started(seen), what="Started")
        assert started(seen)[0]["idToken"]["type"] == "ISO14443"
        await answered_and_still_charging(charger, seen, 1)
        charger.station.plug(2)  # the configured type, unknown to this CSMS under it
        assert (await charger.present_id_tag(2, "CARD01"))["accepted"] is False
        assert seen.of("Authorize")[-1]["idToken"]["type"] == "ISO15693"


async def test_a_remote_start_keeps_the_type_of_its_request(run_against: Run) -> None:
    async with run_against(None, TokenKeyed201, "2.0.1") as (charger, seen):
        answer = await seen.live[CP_ID].call(
            call201.RequestStartTransaction(
                id_token={"id_token": "REMOTE1", "type": "ISO14443"}, remote_start_id=9, evse_id=2
            )
        )
        assert answer.status == "Accepted"
        charger.station.plug(2)  # the EV arrives after the start was authorised
        await until(lambda: started(seen), what="Started")
        assert started(seen)[0]["idToken"] == {"idToken": "REMOTE1", "type": "ISO14443"}
        await answered_and_still_charging(charger, seen, 2)


async def test_a_qr_order_id_is_central(run_against: Run, token: TokenFactory) -> None:
    async with run_against(None, TokenKeyed201, "2.0.1") as (charger, seen):
        station = charger.station
        station.plug(1)
        assert not isinstance(station.scan(token("ORDERQ", station.now())), Refusal)
        await until(lambda: started(seen), what="Started")
        assert started(seen)[0]["idToken"] == {"idToken": "ORDERQ", "type": "Central"}
        await answered_and_still_charging(charger, seen, 1)


async def test_a_queue_row_written_before_rows_had_a_type_is_sent_as_central(
    make_station: Any,
) -> None:
    """Rows queued by an older charger carry no ``token_type``: they go out as ``Central``,
    the type that charger always sent."""
    station = make_station()
    ctx = CommandContext(station, lambda: None, lambda *_: False, lambda *_: None)
    adapter = Adapter201(ctx, None, timeout=1)
    sent: list[Any] = []

    async def call(payload: Any, suppress: bool = True) -> Any:
        sent.append(payload)
        return type("Answer", (), {"id_token_info": {"status": "Accepted"}})()

    adapter.call = call  # type: ignore[method-assign]
    old_row = {
        "evse_id": 1, "id_tag": "ORDEROLD", "meter_wh": 0, "power_w": 0, "timestamp": 1.8e9,
        "offline": True, "seq_no": 0, "charging_state": "Charging", "trigger": "Authorized",
        "remote_start_id": None, "reason": None,
    }  # fmt: skip
    await adapter.deliver(QueuedMessage(1, Kind.STARTED, "000001-abc", old_row, 0, 0))
    assert sent[0].id_token == {"id_token": "ORDEROLD", "type": "Central"}
