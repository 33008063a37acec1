"""What a fault test checks on the database afterwards, from the test process: the money and
ledger invariants, and the rows as plain SQL."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import text

from config.settings import load_settings
from csms.store.db import Database
from qr_extension.tariff import _round_half_up
from tests.csms.ledger_invariants import assert_ledger_consistent
from tests.csms.payments.invariants import assert_money_consistent
from tests.faults.wire_charger import WireCharger

SAMPLES = 3  # meter values (1.6) / Updated events (2.0.1) per wire charger transaction


async def assert_invariants(database_url: str) -> None:
    """The ledger balances and every order's hold, payment and receipt agree."""
    db = Database.connect(database_url)
    try:
        await assert_money_consistent(db)
        async with db.session() as session:
            await assert_ledger_consistent(session)
    finally:
        await db.dispose()


async def rows(database_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    db = Database.connect(database_url)
    try:
        async with db.engine.connect() as conn:
            result = await conn.execute(text(sql), params)
            return [tuple(r) for r in result.all()]
    finally:
        await db.dispose()


def ocpp_cost(wh: int) -> int:
    """What the default billing model charges for ``wh`` Wh and no charging time (an OCPP
    transaction whose start and end carry the same instant)."""
    energy_price = load_settings().default_tariff_energy  # 1/10,000 of the unit per kWh
    return _round_half_up(energy_price * wh * 100, 10_000 * 1000)


async def check_transactions(database_url: str, chargers: list[WireCharger]) -> None:
    """Each charger's two transactions, complete, once; each meter reading and each 2.0.1
    event stored once."""
    stored = await rows(
        database_url,
        "SELECT charger_id, transaction_id, id, id_tag, state, meter_start_wh, meter_stop_wh "
        "FROM transactions ORDER BY id",
    )
    samples = await rows(
        database_url, "SELECT transaction_pk, value FROM meter_values ORDER BY transaction_pk"
    )
    events = await rows(
        database_url, "SELECT charger_id, transaction_id, seq_no FROM transaction_events"
    )
    for cp in chargers:
        mine = [r for r in stored if r[0] == cp.charger_id]
        sent = [a for a in cp.answered if a.txn is not None]
        starts = [a for a in sent if a.action in ("StartTransaction", "TransactionEvent")]
        tags = {
            a.payload.get("idTag") or a.payload.get("idToken", {}).get("idToken") for a in starts
        }
        tags.discard(None)
        assert sorted(r[3] for r in mine) == sorted(tags), (cp.charger_id, mine)
        assert {r[4] for r in mine} == {"Ended"}
        for row in mine:
            pk = row[2]
            txn = (
                next(t for t, i in cp.transaction_ids.items() if str(i) == row[1])
                if cp.version == "1.6"
                else row[1]
            )
            expected = sorted(
                int(v["value"])
                for a in sent
                if a.txn == txn
                for group in a.payload.get("meterValue") or []
                for v in group["sampledValue"]
            )
            readings = sorted(int(v) for p, v in samples if p == pk)
            assert readings == expected, (cp.charger_id, txn, readings, expected)
            if cp.version == "2.0.1":
                seqs = Counter(s for c, t, s in events if (c, t) == (cp.charger_id, txn))
                assert seqs == Counter(range(SAMPLES + 2)), (cp.charger_id, txn, seqs)
