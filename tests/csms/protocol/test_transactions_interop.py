"""Our CSMS against a charger we did not write: the ``ocpp`` library's ChargePoint over a real
socket, sending what third-party stations send.

* RFID card UIDs have the shape of our order ids (``[A-Z0-9]{1,20}``, e.g. ``04A1B2C3``): a
  card used for many sessions is an ordinary tag, never an ``order_reused`` transaction; only a
  tag for which an order exists is an order id, and only its own transactions are flagged.
* Some 2.0.1 stations reuse a ``seqNo`` for a different event (an ``Ended`` under the
  ``Started``'s number): the event is processed (the transaction ends, an order is billed, once),
  flagged ``seq_no_reused`` and logged; a true retransmission is still answered from the store.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from qr_extension.wire import ocpp_timestamp

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth
from ..payments.test_flow_e2e import Flow, flow

CARD = "04A1B2C3"  # a MIFARE UID as readers report it: hex, upper case
UNREGISTERED = "0A1B2C3D4E5F60"  # a 7-byte UID nobody registered


async def _transactions(csms: LiveCsms, charger_id: str) -> list[dict[str, Any]]:
    r = await csms.http.get("/api/v1/admin/transactions", params={"charger_id": charger_id})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = sorted(r.json(), key=lambda row: row["id"])
    return rows


def _flags(row: dict[str, Any]) -> set[str]:
    return {f for f in row["flags"].split(",") if f}


def _register(at: datetime, wh: int, context: str) -> dict[str, Any]:
    return {
        "timestamp": ocpp_timestamp(at),
        "sampled_value": [
            {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"}
        ],
    }


async def _session16(cp: Any, tag: str, at: datetime, meter: int) -> str:
    """One whole 1.6 session with ``tag``; the status of its start."""
    start = await cp.call(
        call16.StartTransaction(
            connector_id=1, id_tag=tag, meter_start=meter, timestamp=ocpp_timestamp(at)
        ),
        suppress=False,
    )
    await cp.call(
        call16.StopTransaction(
            meter_stop=meter + 1000,
            timestamp=ocpp_timestamp(at + timedelta(minutes=20)),
            transaction_id=start.transaction_id,
            id_tag=tag,
            reason="EVDisconnected",
        ),
        suppress=False,
    )
    status: str = start.id_tag_info["status"]
    return status


def _started201(txn: str, at: datetime, wh: int, token: dict[str, str], *, seq_no: int = 0) -> Any:
    return call201.TransactionEvent(
        event_type="Started",
        timestamp=ocpp_timestamp(at),
        trigger_reason="Authorized",
        seq_no=seq_no,
        transaction_info={"transaction_id": txn, "charging_state": "Charging"},
        id_token=token,
        evse={"id": 1, "connector_id": 1},
        meter_value=[_register(at, wh, "Transaction.Begin")],
    )


def _ended201(txn: str, at: datetime, wh: int, *, seq_no: int) -> Any:
    return call201.TransactionEvent(
        event_type="Ended",
        timestamp=ocpp_timestamp(at),
        trigger_reason="EVDeparted",
        seq_no=seq_no,
        transaction_info={"transaction_id": txn, "stopped_reason": "EVDisconnected"},
        meter_value=[_register(at, wh, "Transaction.End")],
    )


async def _session201(cp: Any, txn: str, token: dict[str, str], at: datetime, wh: int) -> str:
    """One whole 2.0.1 session (Started 0, Ended 1); the status the Started got."""
    started = await cp.call(_started201(txn, at, wh, token), suppress=False)
    await cp.call(_ended201(txn, at + timedelta(minutes=20), wh + 1000, seq_no=1), suppress=False)
    status: str = started.id_token_info["status"]
    return status


# --- card UIDs shaped like order ids ---------------------------------------------------------


async def test_card_uids_like_order_ids_are_ordinary_tags_16(csms: LiveCsms) -> None:
    await csms.add_charger("RF16")
    r = await csms.http.put("/api/v1/admin/id-tags", json={"id_tag": CARD})
    assert r.status_code == 200, r.text
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=4)
    async with connect(csms.ws_url("RF16"), Client16, "ocpp1.6", basic_auth("RF16")) as cp:
        auth = await cp.call(call16.Authorize(id_tag=CARD), suppress=False)
        statuses = [await _session16(cp, CARD, t0 + timedelta(seconds=n), 100 * n) for n in (0, 1)]
        statuses += [
            await _session16(cp, UNREGISTERED, t0 + timedelta(seconds=n), 10 * n) for n in (2, 3)
        ]
    assert auth.id_tag_info["status"] == "Accepted"
    assert statuses == ["Accepted", "Accepted", "Invalid", "Invalid"]
    rows = await _transactions(csms, "RF16")
    assert [(r["id_tag"], r["state"]) for r in rows] == [
        (CARD, "Ended"),
        (CARD, "Ended"),
        (UNREGISTERED, "Ended"),
        (UNREGISTERED, "Ended"),
    ]
    assert [_flags(r) for r in rows] == [set(), set(), {"unknown_tag"}, {"unknown_tag"}]


async def test_card_uids_like_order_ids_are_ordinary_tags_201(csms: LiveCsms) -> None:
    await csms.add_charger("RF201", evses=1)
    r = await csms.http.put("/api/v1/admin/id-tags", json={"id_tag": CARD})
    assert r.status_code == 200, r.text
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=4)
    card = {"id_token": CARD, "type": "ISO14443"}
    stranger = {"id_token": UNREGISTERED, "type": "ISO14443"}
    async with connect(csms.ws_url("RF201"), Client201, "ocpp2.0.1", basic_auth("RF201")) as cp:
        auth = await cp.call(call201.Authorize(id_token=card), suppress=False)
        statuses = [
            await _session201(cp, f"TX-{n}", token, t0 + timedelta(seconds=n), 100 * n)
            for n, token in enumerate((card, card, stranger, stranger))
        ]
    assert auth.id_token_info["status"] == "Accepted"
    assert statuses == ["Accepted", "Accepted", "Invalid", "Invalid"]
    rows = await _transactions(csms, "RF201")
    assert [(r["transaction_id"], r["id_tag"], r["state"]) for r in rows] == [
        ("TX-0", CARD, "Ended"),
        ("TX-1", CARD, "Ended"),
        ("TX-2", UNREGISTERED, "Ended"),
        ("TX-3", UNREGISTERED, "Ended"),
    ]
    assert [_flags(r) for r in rows] == [set(), set(), {"unknown_tag"}, {"unknown_tag"}]


async def _order(f: Flow, charger_id: str, driver: dict[str, str]) -> dict[str, Any]:
    r = await f.csms.http.post(
        "/api/v1/orders",
        json={"charger_id": charger_id, "evse_id": 1, "amount": 3000},
        headers=driver,
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    return order


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_real_order_id_reused_is_still_flagged(
    tmp_path: Path, db_url: str, version: str
) -> None:
    """A card (shaped like an order id) beside a real order used twice: only the order's second
    transaction is flagged, and only the order's first is billed."""
    async with flow(tmp_path, db_url) as f:
        await f.csms.add_charger("RE1", evses=1)
        await f.csms.http.put("/api/v1/admin/id-tags", json={"id_tag": CARD})
        alice = await f.driver("alice@example.org", 10_000)
        order = await _order(f, "RE1", alice)
        t0 = f.clock.now
        if version == "1.6":
            async with connect(f.csms.ws_url("RE1"), Client16, "ocpp1.6", basic_auth("RE1")) as cp:
                for n, tag in enumerate((order["id"], CARD, order["id"], CARD)):
                    await _session16(cp, tag, t0 + timedelta(minutes=30 * n), 1000 * n)
        else:
            tokens = [
                {"id_token": order["id"], "type": "Central"},
                {"id_token": CARD, "type": "ISO14443"},
            ]
            async with connect(
                f.csms.ws_url("RE1"), Client201, "ocpp2.0.1", basic_auth("RE1")
            ) as cp:
                for n in range(4):
                    at = t0 + timedelta(minutes=30 * n)
                    await _session201(cp, f"TX-{n}", tokens[n % 2], at, 1000 * n)
        rows = await _transactions(f.csms, "RE1")
        assert [r["id_tag"] for r in rows] == [order["id"], CARD, order["id"], CARD]
        assert [_flags(r) for r in rows] == [set(), set(), {"order_reused"}, set()]
        detail = (await f.csms.http.get(f"/api/v1/admin/orders/{order['id']}")).json()
        assert {flag["kind"] for flag in detail["flags"]} == {"second_transaction"}
        body = (await f.csms.http.get(f"/api/v1/orders/{order['id']}", headers=alice)).json()
        assert body["status"] == "settled" and body["energy_wh"] == 1000


# --- a seqNo reused for a different event ----------------------------------------------------


async def _event_rows(csms: LiveCsms, charger_id: str) -> int:
    from sqlmodel import func, select

    from csms.store.models import TransactionEventRecord

    async with csms.ctx.db.session() as session:
        query = select(func.count()).where(TransactionEventRecord.charger_id == charger_id)
        return int((await session.exec(query)).one())


async def test_ended_reusing_the_started_seq_no_ends_the_transaction(
    csms: LiveCsms, caplog: pytest.LogCaptureFixture
) -> None:
    await csms.add_charger("SEQ1", evses=1)
    await csms.http.put("/api/v1/admin/id-tags", json={"id_tag": CARD})
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    card = {"id_token": CARD, "type": "ISO14443"}
    started = _started201("TX-S", t0, 100, card)
    ended = _ended201("TX-S", t0 + timedelta(minutes=20), 2100, seq_no=0)  # the Started's seqNo
    caplog.set_level(logging.WARNING, logger="csms.transactions")
    async with connect(csms.ws_url("SEQ1"), Client201, "ocpp2.0.1", basic_auth("SEQ1")) as cp:
        first = await cp.call(started, suppress=False)
        end = await cp.call(ended, suppress=False)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        (row,) = await _transactions(csms, "SEQ1")
        stored = await _event_rows(csms, "SEQ1")
        # retransmissions of both: answered as the first time, nothing new stored or logged
        again_started = await cp.call(started, suppress=False)
        again_ended = await cp.call(ended, suppress=False)
    assert first.id_token_info == {"status": "Accepted"} and end.id_token_info is None
    assert (row["state"], row["stop_reason"]) == ("Ended", "EVDisconnected")
    assert (row["meter_start_wh"], row["meter_stop_wh"]) == (100, 2100)
    assert _flags(row) == {"seq_no_reused"}
    assert stored == 2
    (warning,) = warnings
    assert "SEQ1" in warning and "TX-S" in warning and "seqNo 0" in warning
    assert again_started == first and again_ended == end
    assert await _transactions(csms, "SEQ1") == [row]
    assert await _event_rows(csms, "SEQ1") == 2
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == warnings
    detail = (await csms.http.get(f"/api/v1/admin/transactions/{row['id']}")).json()
    assert [v["value"] for v in detail["meter_values"]] == [100.0, 2100.0]


async def test_an_order_ended_under_a_reused_seq_no_is_billed_once(
    tmp_path: Path, db_url: str
) -> None:
    """The differing Ended settles the order from the OCPP meter data; its retransmission and a
    third, different event under the same seqNo charge nothing more (brief 7.8, 7.9)."""
    async with flow(tmp_path, db_url) as f:
        await f.csms.add_charger("SEQ2", evses=1)
        alice = await f.driver("alice@example.org", 10_000)
        order = await _order(f, "SEQ2", alice)
        t0 = f.clock.now
        token = {"id_token": order["id"], "type": "Central"}
        ended = _ended201("TX-O", t0 + timedelta(minutes=30), 8500, seq_no=0)
        async with connect(f.csms.ws_url("SEQ2"), Client201, "ocpp2.0.1", basic_auth("SEQ2")) as cp:
            await cp.call(_started201("TX-O", t0, 500, token), suppress=False)
            await cp.call(ended, suppress=False)
            body = (await f.csms.http.get(f"/api/v1/orders/{order['id']}", headers=alice)).json()
            await cp.call(ended, suppress=False)
            late = _ended201("TX-O", t0 + timedelta(minutes=31), 8600, seq_no=0)
            await cp.call(late, suppress=False)
        # 8 kWh * 1.20 + 0.5 h * 0.30 = 9.75
        assert (body["status"], body["amount"], body["energy_wh"]) == ("settled", 975, 8000)
        after = (await f.csms.http.get(f"/api/v1/orders/{order['id']}", headers=alice)).json()
        assert (after["status"], after["payment_id"]) == ("settled", body["payment_id"])
        assert after["amount"] == 975
        (row,) = await _transactions(f.csms, "SEQ2")
        assert row["state"] == "Ended" and _flags(row) == {"seq_no_reused"}
        assert await _event_rows(f.csms, "SEQ2") == 3


# --- an order id used at another charger -----------------------------------------------------


async def _authorize(cp: Any, version: str, tag: str) -> dict[str, Any]:
    """The idTagInfo / idTokenInfo of an Authorize, as the charger received it."""
    if version == "1.6":
        answer = await cp.call(call16.Authorize(id_tag=tag), suppress=False)
        info: dict[str, Any] = answer.id_tag_info
        return info
    token = {"id_token": tag, "type": "Central"}
    answer = await cp.call(call201.Authorize(id_token=token), suppress=False)
    info = answer.id_token_info
    return info


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_another_chargers_order_reveals_nothing_and_flags_only_that_charger(
    tmp_path: Path, db_url: str, version: str
) -> None:
    """Charger B presents charger A's order id: it is answered exactly as an unknown tag (no
    expiry date of A's order), B's transaction is flagged ``foreign_order``, and A's order and
    A's own later transaction on it are untouched: not ``order_reused``, no order flag, billed
    as usual."""
    async with flow(tmp_path, db_url) as f:
        await f.csms.add_charger("OWNER", evses=1)
        await f.csms.add_charger("THIEF", evses=1)
        alice = await f.driver("alice@example.org", 10_000)
        order = await _order(f, "OWNER", alice)
        subprotocol, cls = ("ocpp1.6", Client16) if version == "1.6" else ("ocpp2.0.1", Client201)
        token = {"id_token": order["id"], "type": "Central"}
        t0 = f.clock.now
        async with connect(f.csms.ws_url("THIEF"), cls, subprotocol, basic_auth("THIEF")) as cp:
            foreign = await _authorize(cp, version, order["id"])
            unknown = await _authorize(cp, version, "ZZZZ9999NOORDER")
            if version == "1.6":
                stolen = await _session16(cp, order["id"], t0, 1000)
            else:
                stolen = await _session201(cp, "TX-THIEF", token, t0, 1000)
        async with connect(f.csms.ws_url("OWNER"), cls, subprotocol, basic_auth("OWNER")) as cp:
            own = await _authorize(cp, version, order["id"])
            later = t0 + timedelta(minutes=30)
            if version == "1.6":
                used = await _session16(cp, order["id"], later, 5000)
            else:
                used = await _session201(cp, "TX-OWNER", token, later, 5000)
        assert foreign == unknown == {"status": "Invalid"}
        assert own["status"] == "Accepted" and len(own) == 2  # with the token's expiry
        assert (stolen, used) == ("Invalid", "Accepted")
        (theirs,) = await _transactions(f.csms, "THIEF")
        (mine,) = await _transactions(f.csms, "OWNER")
        assert (theirs["id_tag"], _flags(theirs)) == (order["id"], {"foreign_order"})
        assert (mine["id_tag"], _flags(mine)) == (order["id"], set())
        detail = (await f.csms.http.get(f"/api/v1/admin/orders/{order['id']}")).json()
        assert detail["flags"] == []
        body = (await f.csms.http.get(f"/api/v1/orders/{order['id']}", headers=alice)).json()
        assert body["status"] == "settled" and body["energy_wh"] == 1000
