"""A charger that is not accepted, over a real socket: the ``ocpp`` library's ChargePoint as
the charger, both versions.

Until the answer to its BootNotification says ``Accepted``, a charger may send BootNotification
and, while ``Pending``, what the CSMS asked it for (the NotifyReport of a GetBaseReport, the
message a TriggerMessage requested); anything else is a CALLERROR ``SecurityError`` (2.0.1
B01.FR.10, B02.FR.09, B03.FR.07), so nothing it sends reaches money (transactions, settlements,
``Synced``) or keys (``SettlementKey``). The operator's registration decides the boot answer;
a charger accepted while connected boots again to learn it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from ocpp.exceptions import SecurityError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from sqlmodel import select

from csms.store.models import ChargerSync, SettlementInbox
from qr_extension.keys import generate_key
from qr_extension.start import StartAuthorization, read_start_token
from qr_extension.wire import MSG_TRUSTED_KEYS, VENDOR_ID, ocpp_timestamp
from tests.charge_point.central import until

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth, make_settings, serve
from ..payments.test_flow_e2e import flow, settle

CARD = "04A1B2C3"
SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
CLIENT = {"1.6": Client16, "2.0.1": Client201}


def _boot(version: str) -> Any:
    if version == "1.6":
        return call16.BootNotification(charge_point_model="M", charge_point_vendor="V")
    return call201.BootNotification(
        charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
    )


def _dt(version: str, message_id: str, data: str) -> Any:
    module = call16 if version == "1.6" else call201
    return module.DataTransfer(vendor_id=VENDOR_ID, message_id=message_id, data=data)


def _register(at: str, wh: int, context: str) -> dict[str, Any]:
    return {
        "timestamp": at,
        "sampled_value": [
            {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"}
        ],
    }


def _start(version: str, tag: str, at: str) -> Any:
    if version == "1.6":
        return call16.StartTransaction(connector_id=1, id_tag=tag, meter_start=500, timestamp=at)
    return call201.TransactionEvent(
        event_type="Started",
        timestamp=at,
        trigger_reason="Authorized",
        seq_no=0,
        transaction_info={"transaction_id": "TX-1"},
        id_token={"id_token": tag, "type": "Central" if tag != CARD else "ISO14443"},
        evse={"id": 1, "connector_id": 1},
        meter_value=[_register(at, 500, "Transaction.Begin")],
    )


def _money_and_keys(
    version: str, order_id: str, at: str, settlement: str, rotation: str
) -> list[Any]:
    """Every message of a non-accepted charger that could reach money, keys or state."""
    if version == "1.6":
        others: list[Any] = [
            call16.StopTransaction(meter_stop=8500, timestamp=at, transaction_id=1),
            call16.Authorize(id_tag=order_id),
            call16.Heartbeat(),
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging"),
            call16.MeterValues(
                connector_id=1,
                meter_value=[
                    {
                        "timestamp": at,
                        "sampled_value": [{"value": "900"}],
                    }
                ],
            ),
        ]
    else:
        others = [
            call201.TransactionEvent(
                event_type="Ended", timestamp=at, trigger_reason="EVDeparted", seq_no=1,
                transaction_info={"transaction_id": "TX-1", "stopped_reason": "EVDisconnected"},
                meter_value=[_register(at, 8500, "Transaction.End")],
            ),
            call201.Authorize(id_token={"id_token": order_id, "type": "Central"}),
            call201.Heartbeat(),
            call201.StatusNotification(
                timestamp=at, connector_status="Occupied", evse_id=1, connector_id=1
            ),
            call201.MeterValues(evse_id=1, meter_value=[_register(at, 900, "Sample.Periodic")]),
        ]  # fmt: skip
    return [
        _start(version, order_id, at),
        _dt(version, "Settlement", settlement),
        _dt(version, "SettlementKey", rotation),
        _dt(version, "Synced", '{"seq": 1}'),
        *others,
    ]


async def _refused(cp: Any, request: Any, state: str) -> None:
    """``request`` is answered CALLERROR SecurityError naming the action and the rule."""
    with pytest.raises(SecurityError) as caught:
        await cp.call(request, suppress=False)
    action = type(request).__name__
    assert caught.value.details["action"] == action, caught.value
    assert caught.value.details["constraint"] == "registration", caught.value
    assert state in caught.value.description and action in caught.value.description


async def _transactions(csms: LiveCsms, charger_id: str) -> list[dict[str, Any]]:
    r = await csms.http.get("/api/v1/admin/transactions", params={"charger_id": charger_id})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_rejected_charger_reaches_no_money_and_no_keys(
    tmp_path: Path, db_url: str, version: str
) -> None:
    """The attack of a charger the operator rejected: a start with a real order, its signed
    settlement, a SettlementKey rotation signed by its pinned key, a Synced. All refused,
    before and after its boot is answered Rejected; the order, the wallet, the pinned key and
    the stored data stay as they were."""
    async with flow(tmp_path, db_url) as f:
        await f.csms.add_charger("RJ", evses=1)
        alice = await f.driver("alice@example.org", 10_000)
        key, next_key = generate_key(), generate_key()
        cls, subprotocol = CLIENT[version], SUBPROTOCOL[version]
        async with connect(f.csms.ws_url("RJ"), cls, subprotocol, basic_auth("RJ")) as cp:
            pin = await cp.call(_dt(version, "SettlementKey", json.dumps(key.public.to_jwk())))
            assert pin.status == "Accepted"
        r = await f.csms.http.post(
            "/api/v1/orders", json={"charger_id": "RJ", "evse_id": 1, "amount": 3000}, headers=alice
        )
        assert r.status_code == 201, r.text
        order = r.json()
        auth = read_start_token(order["start_token"])
        assert isinstance(auth, StartAuthorization)
        t0 = f.clock.now
        settlement = settle(
            auth, key, txn="1" if version == "1.6" else "TX-1", start=int(t0.timestamp()),
            wh=8000, seq=1, clock=f.clock,
        )  # fmt: skip
        rotation = jwt.api_jws.encode(
            json.dumps(next_key.public.to_jwk()).encode(), key.key, algorithm="ES256",
            headers={"kid": key.kid},
        )  # fmt: skip
        r = await f.csms.http.patch("/api/v1/admin/chargers/RJ", json={"registration": "Rejected"})
        assert r.status_code == 200, r.text
        at = ocpp_timestamp(t0 + timedelta(minutes=30))
        attack = _money_and_keys(version, order["id"], at, settlement, rotation)
        async with connect(f.csms.ws_url("RJ"), cls, subprotocol, basic_auth("RJ")) as cp:
            await _refused(cp, attack[0], "Rejected")  # not booted yet on this connection
            boot = await cp.call(_boot(version), suppress=False)
            assert boot.status == "Rejected"
            for request in attack:
                await _refused(cp, request, "Rejected")
            assert cp.data_transfers.empty()  # no TrustedKeys for a rejected charger
        body = (await f.csms.http.get(f"/api/v1/orders/{order['id']}", headers=alice)).json()
        assert body["status"] == "created" and body.get("payment_id") is None
        assert await f.balance(alice) == 7_000  # the hold, nothing captured
        assert await _transactions(f.csms, "RJ") == []
        keys = (await f.csms.http.get("/api/v1/admin/chargers/RJ/settlement-keys")).json()
        assert [(k["kid"], k["retired_at"]) for k in keys] == [(key.kid, None)]
        async with f.csms.ctx.db.session() as session:
            assert (await session.exec(select(SettlementInbox))).all() == []
            assert (await session.exec(select(ChargerSync))).all() == []


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_pending_charger_answers_what_was_asked_and_boots_again_when_accepted(
    tmp_path: Path, version: str
) -> None:
    """An auto-registered charger is Pending: it may send what the CSMS asks for (the report
    of a GetBaseReport, a triggered StatusNotification) and nothing else; accepted by the
    operator while connected, it is asked to boot again and works once that boot is Accepted."""
    async with serve(make_settings(tmp_path, auto_register_chargers=True)) as csms:
        r = await csms.http.put("/api/v1/admin/id-tags", json={"id_tag": CARD})
        assert r.status_code == 200, r.text
        cls, subprotocol = CLIENT[version], SUBPROTOCOL[version]
        now = ocpp_timestamp(csms.ctx.clock())
        status = (
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            if version == "1.6"
            else call201.StatusNotification(
                timestamp=now, connector_status="Available", evse_id=1, connector_id=1
            )
        )
        heartbeat = call16.Heartbeat() if version == "1.6" else call201.Heartbeat()
        async with connect(csms.ws_url("AUTO"), cls, subprotocol, basic_auth("AUTO")) as cp:
            await _refused(cp, heartbeat, "Pending")  # not booted yet: registered Pending
            assert (await cp.call(_boot(version), suppress=False)).status == "Pending"
            for request in (heartbeat, status, _start(version, CARD, now)):
                await _refused(cp, request, "Pending")
            commands = "/api/v1/admin/chargers/AUTO/commands"
            if version == "2.0.1":  # B02: the CSMS reads the device model of a pending station
                r = await csms.http.post(
                    f"{commands}/GetBaseReport", json={"reportBase": "FullInventory"}
                )
                assert r.status_code == 200 and r.json()["response"]["status"] == "Accepted"
                await asyncio.wait_for(asyncio.gather(*cp.report_tasks), 5)  # no CALLERROR
                model = await csms.http.get("/api/v1/admin/chargers/AUTO/device-model")
                assert len(model.json()) == 3
            r = await csms.http.post(
                f"{commands}/TriggerMessage", json={"requestedMessage": "StatusNotification"}
            )
            assert r.status_code == 200 and r.json()["response"]["status"] == "Accepted"
            await cp.call(status, suppress=False)  # asked for: answered
            await _refused(cp, heartbeat, "Pending")  # not asked for

            r = await csms.http.patch(
                "/api/v1/admin/chargers/AUTO", json={"registration": "Accepted"}
            )
            assert r.status_code == 200 and r.json()["registration"] == "Accepted"
            await until(lambda: ("TriggerMessage", "BootNotification") in _triggers(cp))
            await _refused(cp, _start(version, CARD, now), "Pending")  # must boot again
            assert (await cp.call(_boot(version), suppress=False)).status == "Accepted"
            pushed = await asyncio.wait_for(cp.data_transfers.get(), 5)
            assert pushed["message_id"] == MSG_TRUSTED_KEYS
            started = await cp.call(_start(version, CARD, now), suppress=False)
            info = started.id_tag_info if version == "1.6" else started.id_token_info
            assert info["status"] == "Accepted"
            await cp.call(heartbeat, suppress=False)
        assert [t["id_tag"] for t in await _transactions(csms, "AUTO")] == [CARD]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_an_accepted_charger_set_pending_or_rejected_is_stopped_at_once(
    tmp_path: Path, version: str
) -> None:
    """The operator withdraws a connected charger's acceptance: its very next CALL is refused,
    it is asked to boot again (and learns its state from that boot's answer), and it gets no
    more keys (a key rotation pushes them to accepted chargers only)."""
    async with serve(make_settings(tmp_path)) as csms:
        await csms.add_charger("DOWN")
        await csms.add_charger("UP")
        cls, subprotocol = CLIENT[version], SUBPROTOCOL[version]
        heartbeat = call16.Heartbeat() if version == "1.6" else call201.Heartbeat()
        async with (
            connect(csms.ws_url("DOWN"), cls, subprotocol, basic_auth("DOWN")) as down,
            connect(csms.ws_url("UP"), cls, subprotocol, basic_auth("UP")) as up,
        ):
            await down.call(heartbeat, suppress=False)  # accepted, no boot needed to reconnect
            for state in ("Pending", "Rejected"):
                r = await csms.http.patch(
                    "/api/v1/admin/chargers/DOWN", json={"registration": state}
                )
                assert r.status_code == 200, r.text
                await _refused(down, heartbeat, state)
            # asked to boot again after each change, until it is told it is Rejected
            boot_trigger = ("TriggerMessage", "BootNotification")
            await until(lambda: _triggers(down) == [boot_trigger] * 2)
            assert (await down.call(_boot(version), suppress=False)).status == "Rejected"
            r = await csms.http.patch(
                "/api/v1/admin/chargers/DOWN", json={"registration": "Accepted"}
            )
            assert r.status_code == 200, r.text
            await _refused(down, heartbeat, "Rejected")  # until its next boot
            r = await csms.http.post("/api/v1/admin/keys/rotate")
            assert r.status_code == 200 and r.json()["pushed_to"] == 1, r.text
            pushed = await asyncio.wait_for(up.data_transfers.get(), 5)
            assert pushed["message_id"] == MSG_TRUSTED_KEYS
            assert down.data_transfers.empty()
            assert _triggers(down) == [boot_trigger] * 2  # a Rejected charger is not spoken to


def _triggers(cp: Any) -> list[tuple[str, str]]:
    return [(a, kw["requested_message"]) for a, kw in cp.received if a == "TriggerMessage"]
