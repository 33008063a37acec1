"""Numbers a charger sends that no column can hold, over a real socket (the ``ocpp`` library's
ChargePoint as the charger), on both databases.

An OCPP integer outside 32 bits is refused with ``PropertyConstraintViolation`` naming the
field, before any handler runs; a ``Synced`` seq out of range is a DataTransfer ``Rejected``
with the reason; an energy register no column can hold (or that is not finite) is kept out of
the transaction. Never an ``InternalError``; nothing is stored; the connection goes on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from sqlmodel import select

from csms.store.models import ChargerSync
from qr_extension.wire import VENDOR_ID

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth, make_settings, serve

T0 = "2026-11-27T10:00:00.000Z"
T1 = "2026-11-27T10:30:00.000Z"


@pytest.fixture
async def live(tmp_path: Path, db_url: str) -> Any:
    async with serve(make_settings(tmp_path, database_url=db_url)) as csms:
        yield csms


async def _refused(cp: Any, request: Any, path: str) -> None:
    with pytest.raises(PropertyConstraintViolationError) as caught:
        await cp.call(request, suppress=False)
    assert caught.value.details["path"] == path, caught.value
    assert caught.value.details["action"] == type(request).__name__
    assert path in caught.value.description


async def _transactions(csms: LiveCsms, charger_id: str) -> list[dict[str, Any]]:
    r = await csms.http.get("/api/v1/admin/transactions", params={"charger_id": charger_id})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


async def test_16_integers_out_of_range(live: LiveCsms) -> None:
    await live.add_charger("BIG16")
    async with connect(live.ws_url("BIG16"), Client16, "ocpp1.6", basic_auth("BIG16")) as cp:
        await _refused(
            cp,
            call16.StartTransaction(connector_id=1, id_tag="A", meter_start=2**70, timestamp=T0),
            "meterStart",
        )
        await _refused(
            cp,
            call16.StartTransaction(connector_id=2**40, id_tag="A", meter_start=0, timestamp=T0),
            "connectorId",
        )
        await _refused(
            cp, call16.StopTransaction(meter_stop=10, timestamp=T1, transaction_id=2**31),
            "transactionId",
        )  # fmt: skip
        await _refused(
            cp,
            call16.MeterValues(
                connector_id=1, transaction_id=-(2**40),
                meter_value=[{"timestamp": T0, "sampled_value": [{"value": "5"}]}],
            ),
            "transactionId",
        )  # fmt: skip
        assert await _transactions(live, "BIG16") == []
        # a busy fast charger's lifetime register (2.5 GWh, beyond 32 bits) is kept whole
        largest = call16.StartTransaction(
            connector_id=1, id_tag="A", meter_start=2_500_000_000, timestamp=T0
        )
        start = await cp.call(largest, suppress=False)
    (row,) = await _transactions(live, "BIG16")
    assert row["transaction_id"] == str(start.transaction_id)
    assert row["meter_start_wh"] == 2_500_000_000


def _register(at: str, value: float, **unit: Any) -> dict[str, Any]:
    sampled = {"value": value, "context": "Transaction.Begin",
               "measurand": "Energy.Active.Import.Register", **unit}  # fmt: skip
    return {"timestamp": at, "sampled_value": [sampled]}


def _started(txn: str, seq_no: int, **kw: Any) -> Any:
    return call201.TransactionEvent(
        event_type="Started", timestamp=T0, trigger_reason="Authorized", seq_no=seq_no,
        transaction_info={"transaction_id": txn}, **kw,
    )  # fmt: skip


async def test_201_integers_and_registers_out_of_range(live: LiveCsms) -> None:
    await live.add_charger("BIG201", evses=1)
    async with connect(live.ws_url("BIG201"), Client201, "ocpp2.0.1", basic_auth("BIG201")) as cp:
        await _refused(cp, _started("TX-0", 2**70), "seqNo")
        await _refused(cp, _started("TX-0", 0, evse={"id": 2**40}), "evse.id")
        await _refused(
            cp,
            call201.StatusNotification(
                timestamp=T0, connector_status="Available", evse_id=1, connector_id=-(2**32)
            ),
            "connectorId",
        )
        assert await _transactions(live, "BIG201") == []
        # registers no column holds: not finite once scaled (1e308 kWh, a multiplier of 400),
        # or beyond exact doubles (1e17 Wh): stored as events, not as meter registers; a
        # lifetime register of 3 TWh fits the 64-bit columns and is kept
        registers = [
            _register(T0, 1e308, unit_of_measure={"unit": "kWh"}),
            _register(T0, 5.0, unit_of_measure={"unit": "Wh", "multiplier": 400}),
            _register(T0, 1e17),
            _register(T0, 3e12),
        ]
        for n, register in enumerate(registers):
            answer = await cp.call(
                _started(f"TX-{n}", 0, evse={"id": 1, "connector_id": 1}, meter_value=[register]),
                suppress=False,
            )
            assert answer.id_token_info is None
    rows = await _transactions(live, "BIG201")
    assert sorted((r["transaction_id"], r["meter_start_wh"]) for r in rows) == [
        ("TX-0", None), ("TX-1", None), ("TX-2", None), ("TX-3", 3_000_000_000_000),
    ]  # fmt: skip


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_synced_seq_out_of_range_is_rejected_with_the_reason(
    live: LiveCsms, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    await live.add_charger("SYNC")
    module, cls = (call16, Client16) if version == "1.6" else (call201, Client201)
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    caplog.set_level(logging.WARNING, logger="csms.data_transfer")

    def synced(seq: Any) -> Any:
        data = json.dumps({"seq": seq}) if not isinstance(seq, str) else seq
        return module.DataTransfer(vendor_id=VENDOR_ID, message_id="Synced", data=data)

    async with connect(live.ws_url("SYNC"), cls, subprotocol, basic_auth("SYNC")) as cp:
        for seq in (10**30, 2**31, '{"seq": 1e30}'):
            answer = await cp.call(synced(seq), suppress=False)
            assert answer.status == "Rejected" and "seq" in answer.data, (seq, answer)
        async with live.ctx.db.session() as session:
            assert (await session.exec(select(ChargerSync))).all() == []
        assert (await cp.call(synced(2**31 - 1), suppress=False)).status == "Accepted"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("SYNC: Synced refused" in w for w in warnings), warnings
    async with live.ctx.db.session() as session:
        (row,) = (await session.exec(select(ChargerSync))).all()
    assert row.last_seq == 2**31 - 1
