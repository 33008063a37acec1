"""The charger against a minimal central system written with the ``ocpp`` library only:
boot, statuses, online and offline transactions, delivery order, no duplicates, commands."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from charge_point.charger import Charger
from qr_extension.keys import KeyRing, PublicKey, generate_key
from qr_extension.refusal import Refusal
from qr_extension.settlement import verify_settlement
from qr_extension.trust import sign_trusted_keys
from qr_extension.wire import VENDOR_ID
from tests.charge_point.central import Central, until
from tests.charge_point.conftest import CP_ID, TokenFactory, station_settings

VERSIONS = ["1.6", "2.0.1"]


@asynccontextmanager
async def running(
    tmp_path: Path, central: Central, version: str, **kw: Any
) -> AsyncIterator[Charger]:
    settings = station_settings(tmp_path, csms_url=central.url, ocpp_version=version, **kw)
    charger = Charger(settings)
    task = asyncio.create_task(charger.run())
    try:
        await until(lambda: charger.station.online and CP_ID in central.connections, what="boot")
        yield charger
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()


def data_transfers(central: Central, message_id: str) -> list[str]:
    return [d["data"] for d in central.of("DataTransfer") if d["message_id"] == message_id]


def transaction_actions(central: Central) -> list[str]:
    keep = {"StartTransaction", "MeterValues", "StopTransaction", "TransactionEvent"}
    out = []
    for m in central.messages:
        if m.action in keep:
            out.append(m.action)
        elif m.action == "DataTransfer" and m.payload["message_id"] in ("Settlement", "Synced"):
            out.append(m.payload["message_id"])
    return out


@pytest.mark.parametrize("version", VERSIONS)
async def test_boot_status_and_settlement_key(
    tmp_path: Path, central: Central, jwks_file: Path, version: str
) -> None:
    async with running(tmp_path, central, version, trusted_keys_file=jwks_file) as charger:
        await until(lambda: len(central.of("StatusNotification")) >= 2, what="statuses")
        assert central.actions()[0] == "BootNotification"
        jwk = json.loads(data_transfers(central, "SettlementKey")[0])
        assert PublicKey.from_jwk(jwk).kid == charger.station.key.kid
        assert "d" not in jwk  # the private key never leaves the charger
        statuses = central.of("StatusNotification")
        field = "status" if version == "1.6" else "connector_status"
        assert [s[field] for s in statuses[:2]] == ["Available", "Available"]
        await until(lambda: data_transfers(central, "Synced"), what="Synced")
        assert json.loads(data_transfers(central, "Synced")[0]) == {"seq": 0}
        charger.station.plug(1)
        await until(lambda: len(central.of("StatusNotification")) >= 3, what="Preparing")
        expected = "Preparing" if version == "1.6" else "Occupied"
        assert central.of("StatusNotification")[-1][field] == expected


@pytest.mark.parametrize("version", VERSIONS)
async def test_online_remote_start_and_stop(
    tmp_path: Path, central: Central, jwks_file: Path, version: str
) -> None:
    async with running(
        tmp_path, central, version, trusted_keys_file=jwks_file, time_scale=60
    ) as charger:
        cp = central.connections[CP_ID]
        charger.station.plug(1)
        if version == "1.6":
            answer = await cp.call(call16.RemoteStartTransaction(id_tag="ORDERA", connector_id=1))
        else:
            answer = await cp.call(
                call201.RequestStartTransaction(
                    id_token={"id_token": "ORDERA", "type": "Central"},
                    remote_start_id=42,
                    evse_id=1,
                )
            )
        assert answer.status == "Accepted"
        started = "StartTransaction" if version == "1.6" else "TransactionEvent"
        await until(lambda: central.of(started), what="start")
        first = central.of(started)[0]
        if version == "1.6":
            assert first["id_tag"] == "ORDERA"
            answer = await cp.call(call16.RemoteStopTransaction(transaction_id=100))
        else:
            assert first["id_token"]["id_token"] == "ORDERA" and "offline" not in first
            assert first["transaction_info"]["remote_start_id"] == 42
            txn = first["transaction_info"]["transaction_id"]
            answer = await cp.call(call201.RequestStopTransaction(transaction_id=txn))
        assert answer.status == "Accepted"
        if version == "1.6":
            await until(lambda: central.of("StopTransaction"), what="stop")
            assert central.of("StopTransaction")[0]["reason"] == "Remote"
        else:
            await until(
                lambda: central.of("TransactionEvent")[-1]["event_type"] == "Ended", what="ended"
            )
            ended = central.of("TransactionEvent")[-1]
            assert ended["transaction_info"]["stopped_reason"] == "Remote"
        assert not data_transfers(central, "Settlement")  # a remote start is billed by the CSMS


@pytest.mark.parametrize("version", VERSIONS)
async def test_offline_qr_transaction_is_delivered_in_order_on_reconnect(
    tmp_path: Path, central: Central, jwks_file: Path, token: TokenFactory, version: str
) -> None:
    async with running(
        tmp_path, central, version, trusted_keys_file=jwks_file, time_scale=600, meter_interval_s=60
    ) as charger:
        station = charger.station
        await until(lambda: data_transfers(central, "Synced"), what="first Synced")
        charger.link.set_up(False)
        await until(lambda: not station.online, what="link down")
        seen = len(central.messages)
        station.plug(1, capacity_wh=60_000, soc=0.3)
        result = station.scan(token("ORDEROFF", station.now(), wh=1500, amount=50_000))
        assert not isinstance(result, Refusal)
        await until(lambda: station.sessions[1].limit is not None, what="energy limit")
        station.unplug(1)
        assert len(central.messages) == seen  # nothing reached the CSMS while offline
        charger.link.set_up(True)
        await until(lambda: len(data_transfers(central, "Synced")) >= 2, what="second Synced")
        await until(lambda: station.store.queue_len() == 0, what="queue drained")
        actions = transaction_actions(central)
        settlement = data_transfers(central, "Settlement")
        assert len(settlement) == 1
        s = verify_settlement(settlement[0], key=station.key.public, audience="qrcharge")
        assert not isinstance(s, Refusal) and s.offline and s.order_id == "ORDEROFF"
        assert json.loads(data_transfers(central, "Synced")[-1]) == {"seq": s.seq}
        if version == "1.6":
            assert actions[0] == "Synced" and actions[1] == "StartTransaction"
            assert actions[-3:] == ["StopTransaction", "Settlement", "Synced"]
            assert set(actions[2:-3]) == {"MeterValues"}
            (start,) = central.of("StartTransaction")
            assert start["id_tag"] == "ORDEROFF" and start["meter_start"] == s.meter_start_wh
            (stop,) = central.of("StopTransaction")
            assigned = next(iter(central.started.values()))
            assert stop["transaction_id"] == assigned  # the 1.6 rewrite
            assert stop["meter_stop"] == s.meter_stop_wh and stop["reason"] == "EVDisconnected"
            assert {m["transaction_id"] for m in central.of("MeterValues")} == {assigned}
        else:
            events = central.of("TransactionEvent")
            assert next(e["event_type"] for e in events) == "Started"
            assert events[-1]["event_type"] == "Ended"
            assert [e["seq_no"] for e in events] == list(range(len(events)))  # gapless
            assert all(e["offline"] is True for e in events)
            assert {e["transaction_info"]["transaction_id"] for e in events} == {s.transaction_id}
            assert actions[-2:] == ["Settlement", "Synced"]
            assert events[-1]["transaction_info"]["stopped_reason"] == "EVDisconnected"
        # the link flaps again: nothing is sent twice
        before = transaction_actions(central)
        charger.link.set_up(False)
        await until(lambda: not station.online, what="down again")
        charger.link.set_up(True)
        await until(lambda: len(data_transfers(central, "Synced")) >= 3, what="third Synced")
        assert transaction_actions(central) == [*before, "Synced"]


async def test_16_commands_have_real_effect(
    tmp_path: Path, central: Central, jwks_file: Path
) -> None:
    async with running(tmp_path, central, "1.6", trusted_keys_file=jwks_file) as charger:
        cp = central.connections[CP_ID]
        station = charger.station
        answer = await cp.call(
            call16.ChangeConfiguration(key="MeterValueSampleInterval", value="15")
        )
        assert answer.status == "Accepted" and station.config["MeterValueSampleInterval"] == 15
        answer = await cp.call(call16.ChangeConfiguration(key="NumberOfConnectors", value="9"))
        assert answer.status == "Rejected"
        answer = await cp.call(call16.ChangeConfiguration(key="Nope", value="1"))
        assert answer.status == "NotSupported"
        answer = await cp.call(call16.GetConfiguration(key=["MeterValueSampleInterval", "X"]))
        assert answer.configuration_key == [
            {"key": "MeterValueSampleInterval", "readonly": False, "value": "15"}
        ]
        assert answer.unknown_key == ["X"]
        answer = await cp.call(
            call16.SendLocalList(
                list_version=3,
                update_type="Full",
                local_authorization_list=[{"idTag": "CARD1", "idTagInfo": {"status": "Accepted"}}],
            )
        )
        assert answer.status == "Accepted"
        assert (await cp.call(call16.GetLocalListVersion())).list_version == 3
        # a card on the local list starts a session offline (LocalAuthorizeOffline)
        charger.link.set_up(False)
        await until(lambda: not station.online, what="offline")
        station.plug(2)
        assert (await charger.present_id_tag(2, "CARD1"))["accepted"]
        assert station.sessions[2].id_tag == "CARD1"
        assert not (await charger.present_id_tag(1, "UNKNOWN"))["accepted"]
        charger.link.set_up(True)
        await until(lambda: CP_ID in central.connections and station.online, what="back")
        cp = central.connections[CP_ID]
        answer = await cp.call(call16.UnlockConnector(connector_id=2))
        assert answer.status == "Unlocked" and 2 not in station.sessions
        assert (await cp.call(call16.ClearCache())).status == "Accepted"
        answer = await cp.call(call16.TriggerMessage(requested_message="Heartbeat"))
        assert answer.status == "Accepted"
        await until(lambda: central.of("Heartbeat"), what="triggered heartbeat")
        answer = await cp.call(call16.DataTransfer(vendor_id="other", message_id="x", data="y"))
        assert answer.status == "UnknownVendorId"
        boots = len(central.of("BootNotification"))
        assert (await cp.call(call16.Reset(type="Soft"))).status == "Accepted"
        await until(lambda: len(central.of("BootNotification")) > boots, what="reboot")
        await until(lambda: central.of("StopTransaction"), what="stop of unlocked session")
        assert central.of("StopTransaction")[0]["reason"] == "UnlockCommand"


async def test_201_variables_and_online_authorize(
    tmp_path: Path, central: Central, jwks_file: Path
) -> None:
    async with running(tmp_path, central, "2.0.1", trusted_keys_file=jwks_file) as charger:
        cp = central.connections[CP_ID]
        answer = await cp.call(
            call201.SetVariables(
                set_variable_data=[
                    {
                        "component": {"name": "AuthCtrlr"},
                        "variable": {"name": "LocalPreAuthorize"},
                        "attributeValue": "true",
                    },
                    {
                        "component": {"name": "Foo"},
                        "variable": {"name": "Bar"},
                        "attributeValue": "1",
                    },
                ]
            )
        )
        statuses = [r["attribute_status"] for r in answer.set_variable_result]
        assert statuses == ["Accepted", "UnknownVariable"]
        assert charger.station.config["LocalPreAuthorize"] is True
        answer = await cp.call(
            call201.GetVariables(
                get_variable_data=[
                    {"component": {"name": "AuthCtrlr"}, "variable": {"name": "LocalPreAuthorize"}}
                ]
            )
        )
        assert answer.get_variable_result[0]["attribute_value"] == "true"
        answer = await cp.call(
            call201.SendLocalList(
                version_number=7,
                update_type="Full",
                local_authorization_list=[
                    {
                        "idToken": {"idToken": "LISTCARD", "type": "ISO14443"},
                        "idTokenInfo": {"status": "Accepted"},
                    }
                ],
            )
        )
        assert answer.status == "Accepted"
        assert (await cp.call(call201.GetLocalListVersion())).version_number == 7
        assert charger.station.store.local_list() == {"LISTCARD": ("Accepted", None)}
        assert (await cp.call(call201.ClearCache())).status == "Accepted"
        charger.station.plug(1)
        assert (await charger.present_id_tag(1, "OKCARD"))["accepted"]
        assert central.of("Authorize")
        assert not (await charger.present_id_tag(2, "BADCARD"))["accepted"]
        assert charger.station.store.cached("OKCARD") == ("Accepted", None)


@pytest.mark.parametrize("version", VERSIONS)
async def test_trusted_keys_over_data_transfer(
    tmp_path: Path, central: Central, csms_key, version: str
) -> None:
    async with running(tmp_path, central, version, trust_first_keys=True) as charger:
        cp = central.connections[CP_ID]
        call = call16 if version == "1.6" else call201

        def push(data: str) -> Any:
            return cp.call(
                call.DataTransfer(vendor_id=VENDOR_ID, message_id="TrustedKeys", data=data)
            )

        ring = KeyRing((csms_key.public,))
        assert (await push(sign_trusted_keys(ring, csms_key, issued_at=10))).status == "Accepted"
        assert [k.kid for k in charger.station.trusted] == [csms_key.kid]
        stranger = generate_key()
        other = sign_trusted_keys(KeyRing((stranger.public,)), stranger, issued_at=20)
        assert (await push(other)).status == "Rejected"  # not signed by the current set
        assert [k.kid for k in charger.station.trusted] == [csms_key.kid]
        rotated = KeyRing((csms_key.public, stranger.public))
        answer = await push(sign_trusted_keys(rotated, csms_key, issued_at=30))
        assert answer.status == "Accepted" and len(charger.station.trusted) == 2


async def test_201_reset_on_idle_waits_for_the_session(
    tmp_path: Path, central: Central, jwks_file: Path
) -> None:
    async with running(tmp_path, central, "2.0.1", trusted_keys_file=jwks_file) as charger:
        station = charger.station
        cp = central.connections[CP_ID]
        station.plug(1)
        assert station.remote_start("ORDERIDLE", 1, None)
        answer = await cp.call(call201.Reset(type="OnIdle"))
        assert answer.status == "Scheduled"
        boots = len(central.of("BootNotification"))
        await asyncio.sleep(0.3)
        assert len(central.of("BootNotification")) == boots  # not while charging
        station.press_stop(1)
        await until(lambda: len(central.of("BootNotification")) > boots, what="reset at idle")
        assert central.of("BootNotification")[-1]["reason"] == "RemoteReset"
        assert station.store.cached("ORDERIDLE") == ("Accepted", None)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_refused_id_tag_stops_the_transaction(
    tmp_path: Path, central: Central, jwks_file: Path, version: str
) -> None:
    central.start_status = "Invalid"
    async with running(tmp_path, central, version, trusted_keys_file=jwks_file) as charger:
        station = charger.station
        station.plug(1)
        assert station.remote_start("STOLEN", 1, None)
        await until(lambda: not station.sessions, what="DeAuthorized stop")
        if version == "1.6":
            await until(lambda: central.of("StopTransaction"), what="stop")
            assert central.of("StopTransaction")[0]["reason"] == "DeAuthorized"
        else:
            await until(
                lambda: central.of("TransactionEvent")[-1]["event_type"] == "Ended", what="ended"
            )
            ended = central.of("TransactionEvent")[-1]
            assert ended["transaction_info"]["stopped_reason"] == "DeAuthorized"
        assert station.connectors[1].status.value == "Finishing"


@pytest.mark.parametrize("version", VERSIONS)
async def test_trigger_message_status_and_meter_values(
    tmp_path: Path, central: Central, jwks_file: Path, version: str
) -> None:
    async with running(tmp_path, central, version, trusted_keys_file=jwks_file) as charger:
        cp = central.connections[CP_ID]
        charger.station.plug(2)
        before = len(central.of("StatusNotification"))
        if version == "1.6":
            answer = await cp.call(
                call16.TriggerMessage(requested_message="StatusNotification", connector_id=2)
            )
            assert answer.status == "Accepted"
            answer = await cp.call(call16.TriggerMessage(requested_message="MeterValues"))
        else:
            answer = await cp.call(
                call201.TriggerMessage(
                    requested_message="StatusNotification", evse={"id": 2, "connector_id": 1}
                )
            )
            assert answer.status == "Accepted"
            answer = await cp.call(call201.TriggerMessage(requested_message="MeterValues"))
        assert answer.status == "Accepted"
        await until(lambda: len(central.of("MeterValues")) >= 2, what="triggered meter values")
        assert len(central.of("StatusNotification")) > before


async def test_the_charger_waits_for_a_csms_that_is_down_and_connects_when_it_is_back(
    tmp_path: Path, jwks_file: Path
) -> None:
    from tests.charge_point.central import serve

    central = Central()
    server = await serve(central)
    port = central.port
    server.close()
    await server.wait_closed()  # the CSMS is down when the charger starts
    settings = station_settings(
        tmp_path, csms_url=f"ws://127.0.0.1:{port}/ocpp", trusted_keys_file=jwks_file
    )
    charger = Charger(settings)
    task = asyncio.create_task(charger.run())
    try:
        charger.station.plug(1)  # statuses change while offline
        await asyncio.sleep(0.3)  # several reconnect attempts fail meanwhile
        assert not charger.station.online
        server = await serve(central, port)
        await until(lambda: charger.station.online, what="connected once the CSMS is back")
        await until(lambda: len(central.of("StatusNotification")) >= 2, what="statuses")
        assert central.of("StatusNotification")[0]["status"] == "Preparing"  # current status
        server.close()
        await server.wait_closed()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()


async def test_a_refused_handshake_waits_for_its_retry_after(
    tmp_path: Path, jwks_file: Path
) -> None:
    """A busy CSMS (503) or a password throttle (429) says when to come back; the charger
    comes back then, not at its own (here much shorter) backoff."""
    import time

    import websockets
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    attempts: list[float] = []

    def refuse(connection: Any, request: Any) -> Response:
        attempts.append(time.monotonic())
        return Response(503, "Service Unavailable", Headers({"Retry-After": "1"}), b"busy\n")

    async with websockets.serve(
        lambda ws: ws.close(), "127.0.0.1", 0, process_request=refuse
    ) as server:
        port = server.sockets[0].getsockname()[1]
        settings = station_settings(
            tmp_path, csms_url=f"ws://127.0.0.1:{port}/ocpp", trusted_keys_file=jwks_file
        )
        charger = Charger(settings)
        task = asyncio.create_task(charger.run())
        try:
            await until(lambda: len(attempts) >= 2, 10, "a second attempt")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            charger.store.close()
    assert attempts[1] - attempts[0] >= 0.95  # its own backoff would be 0.05-0.1 s
