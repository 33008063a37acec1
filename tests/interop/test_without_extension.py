"""Our charger against central systems that know nothing of the ``org.qrcharge`` extension and
refuse much else: it must stay one connection (no `link lost`, no reconnect), report its
statuses, keep its heartbeat, run a QR session started offline-style from its installed keys,
and get rid of the messages such a CSMS will never take, within its bounded retry policy."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from charge_point.charger import Charger
from qr_extension.refusal import Refusal
from tests.charge_point.central import Central, until
from tests.charge_point.central import serve as serve_full
from tests.charge_point.conftest import CP_ID, TokenFactory, station_settings
from tests.interop.centrals import BootOnly16, BootOnly201, Refusing16, Refusing201, Seen
from tests.interop.conftest import Run

VERSIONS = ["1.6", "2.0.1"]


async def charge_from_qr(charger: Charger, token: TokenFactory, order_id: str) -> None:
    """A driver's start QR on EVSE 1, a short charge, then unplug."""
    station = charger.station
    station.plug(1)
    assert not isinstance(station.scan(token(order_id, station.now())), Refusal)
    await asyncio.sleep(0.3)
    station.unplug(1)


def status_of(version: str, payload: dict[str, Any]) -> str:
    return str(payload["status" if version == "1.6" else "connectorStatus"])


async def keeps_heartbeating(charger: Charger, seen: Seen) -> None:
    beats = seen.count("Heartbeat")
    await until(lambda: seen.count("Heartbeat") > beats, what="another Heartbeat")
    assert seen.connections == {CP_ID: 1} and charger.link.connects == 1
    assert charger.station.online


def no_link_lost(caplog: pytest.LogCaptureFixture) -> bool:
    return not any("link lost" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_central_system_with_only_boot_and_heartbeat(
    run_against: Run, token: TokenFactory, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with run_against(BootOnly16, BootOnly201, version) as (charger, seen):
        await until(lambda: seen.count("StatusNotification") >= 2, what="both statuses")
        await until(lambda: seen.count("Heartbeat") >= 2, what="two heartbeats")
        await charge_from_qr(charger, token, "ORDERQ")
        await until(lambda: charger.store.queue_len() == 0, what="the queue emptied")
        await keeps_heartbeating(charger, seen)
        assert no_link_lost(caplog)
        # the vendor extension was offered once, then left alone
        assert len(seen.data_transfers("SettlementKey")) == 1
        assert not seen.data_transfers("Settlement") and not seen.data_transfers("Synced")
        # the settlement reaches the CSMS through the driver: it is on the screen
        assert charger.station.display.snapshot()["qr_kind"] == "settlement"
        # NotImplemented: no retry could succeed, so every transaction message went out once
        if version == "1.6":
            assert seen.count("StartTransaction") == 1
            assert seen.count("StopTransaction") == 0  # no transactionId was ever assigned
        else:
            kinds = [e["eventType"] for e in seen.of("TransactionEvent")]
            assert kinds[0] == "Started" and kinds[-1] == "Ended"
            assert len(kinds) == len(set(kinds))
        evse1 = [status_of(version, s) for s in seen.of("StatusNotification")]
        assert evse1[-1] == "Available" and len(evse1) >= 4


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_central_system_that_answers_callerror_to_everything_but_boot(
    run_against: Run, token: TokenFactory, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with run_against(Refusing16, Refusing201, version, message_attempts=3) as (
        charger,
        seen,
    ):
        await until(lambda: seen.count("StatusNotification") >= 2, what="both statuses")
        await until(lambda: seen.count("Heartbeat") >= 2, what="two refused heartbeats")
        await charge_from_qr(charger, token, "ORDERQ")
        await until(lambda: charger.store.queue_len() == 0, what="the queue emptied")
        await keeps_heartbeating(charger, seen)
        assert no_link_lost(caplog)
        assert len(seen.data_transfers("SettlementKey")) == 1  # NotSupported: asked once
        assert not seen.data_transfers("Settlement") and not seen.data_transfers("Synced")
        # InternalError: each message was tried TransactionMessageAttempts times, then dropped
        if version == "1.6":
            assert seen.count("StartTransaction") == 3
            assert seen.count("StopTransaction") == 0  # its start was dropped: no id to send
        else:
            kinds = [e["eventType"] for e in seen.of("TransactionEvent")]
            assert kinds.count("Started") == 3 and kinds.count("Ended") == 3
        ours = [r for r in caplog.records if r.name.startswith("charge_point")]
        dropped = [r for r in ours if r.levelno >= logging.ERROR]
        assert dropped and all("dropping" in r.getMessage() for r in dropped)
        # what the CSMS triggers is sent, refused again, and the link stays
        statuses = seen.count("StatusNotification")
        trigger = (call16 if version == "1.6" else call201).TriggerMessage(
            requested_message="StatusNotification"
        )
        assert (await seen.live[CP_ID].call(trigger)).status == "Accepted"
        await until(lambda: seen.count("StatusNotification") == statuses + 2, what="triggered")
        await keeps_heartbeating(charger, seen)


@pytest.mark.parametrize(
    ("version", "answer"), [("1.6", "UnknownVendorId"), ("2.0.1", "UnknownMessageId")]
)
async def test_a_full_central_system_without_the_vendor_id(
    tmp_path: Any, jwks_file: Any, token: TokenFactory, version: str, answer: str
) -> None:
    """A CSMS that handles every core message but answers our DataTransfers with
    UnknownVendorId / UnknownMessageId gets a plain charger: no Synced, no Settlement, and
    every transaction message delivered."""
    central = Central(data_transfer_status=answer)
    server = await serve_full(central)
    settings = station_settings(
        tmp_path, csms_url=central.url, ocpp_version=version, trusted_keys_file=jwks_file
    )
    charger = Charger(settings)
    task = asyncio.create_task(charger.run())
    try:
        await until(lambda: charger.station.online, what="boot")
        await charge_from_qr(charger, token, "ORDERU")
        await until(lambda: charger.store.queue_len() == 0, what="the queue emptied")
        await asyncio.sleep(0.2)
        ids = [d["message_id"] for d in central.of("DataTransfer")]
        assert ids == ["SettlementKey"]
        if version == "1.6":
            (start,) = central.of("StartTransaction")
            assert start["id_tag"] == "ORDERU"
            (stop,) = central.of("StopTransaction")
            assert stop["transaction_id"] == 100  # the id the CSMS gave
        else:
            events = central.of("TransactionEvent")
            assert events[0]["event_type"] == "Started" and events[-1]["event_type"] == "Ended"
            assert events[0]["id_token"] == {"id_token": "ORDERU", "type": "Central"}
        assert charger.link.connects == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()
        server.close()
        await server.wait_closed()
