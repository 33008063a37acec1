"""The end-of-run count: what the chargers and drivers saw, against what the database holds.

Read after the CSMS stopped (its writer has flushed). Only this run's rows count: transactions
started with this run's RFID tags or order ids, orders this run placed. A transaction is found
by its 2.0.1 ``transactionId``, or for 1.6 by (charger, id tag, meter start): the meter only
grows on one charger. Counts:

* ``lost``: sessions whose start the CSMS answered but that the database lacks; ended ones
  not ``Ended`` there;
* ``duplicated``: a session stored twice, or a stored one no charger started;
* orders placed / started / settled / captured, each against what the chargers and drivers
  were answered, and ``charged_twice``: orders with more than one capture or debt transfer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.ocpp_load_frames import ORDER, RFID, SessionLog

TRANSACTIONS = (
    "SELECT charger_id, transaction_id, ocpp_version, id_tag, meter_start_wh, state "
    "FROM transactions WHERE charger_id LIKE 'LOAD%'"
)
ORDERS = (
    "SELECT id, status, started_at IS NOT NULL, settled_at IS NOT NULL, paid_at IS NOT NULL "
    "FROM orders WHERE charger_id LIKE 'LOAD%'"
)
PAYMENTS = "SELECT order_id, status FROM payments"
CHARGES = (
    "SELECT order_id, count(*) FROM ledger_transfers WHERE kind IN ('capture', 'debt') "
    "GROUP BY order_id"
)
QUERIES = (TRANSACTIONS, ORDERS, PAYMENTS, CHARGES)


def read_sqlite(path: str) -> list[list[tuple[Any, ...]]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return [list(conn.execute(q)) for q in QUERIES]


def read_postgres(dsn: str) -> list[list[tuple[Any, ...]]]:
    import asyncpg

    async def read() -> list[list[tuple[Any, ...]]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [[tuple(r) for r in await conn.fetch(q)] for q in QUERIES]
        finally:
            await conn.close()

    return asyncio.run(read())


@dataclass(frozen=True, slots=True)
class Expected:
    """What the run knows from its own side."""

    sessions: Sequence[SessionLog]
    tags: frozenset[str]
    orders_placed: frozenset[str]
    captured: int  # the drivers' confirms answered 200


def _key(version: str, charger_id: str, id_tag: str, key: str) -> tuple[str, ...]:
    return (charger_id, key) if version == "2.0.1" else (charger_id, id_tag, key)


def compare(expected: Expected, rows: list[list[tuple[Any, ...]]]) -> dict[str, Any]:
    """The counts, and ``ok``: nothing lost or duplicated and every count as answered."""
    transactions, orders, payments, charges = rows
    ours = expected.tags | expected.orders_placed
    stored: Counter[tuple[str, ...]] = Counter()
    ended_in_db: set[tuple[str, ...]] = set()
    for charger_id, txn_id, version, id_tag, meter_start, state in transactions:
        if id_tag not in ours:
            continue
        key = _key(version, charger_id, id_tag, txn_id if version == "2.0.1" else str(meter_start))
        stored[key] += 1
        if state == "Ended":
            ended_in_db.add(key)
    sent = {_key(s.version, s.charger_id, s.id_tag, s.key): s for s in expected.sessions}
    answered = [k for k, s in sent.items() if s.start_status]
    by_kind = Counter(s.kind for s in sent.values() if s.start_status)
    statuses = Counter(f"{s.kind}:{s.start_status or 'unanswered'}" for s in sent.values())
    lost_starts = sum(1 for k in answered if k not in stored)
    lost_ends = sum(1 for k, s in sent.items() if s.ended and k not in ended_in_db)
    duplicated = sum(n - 1 for n in stored.values() if n > 1)
    unexpected = sum(1 for k in stored if k not in sent)

    placed = expected.orders_placed
    mine = [r for r in orders if r[0] in placed]
    paid = {r[0]: r[1] for r in payments if r[0] in placed}
    twice = sum(1 for order_id, n in charges if order_id in placed and n > 1)
    order_sessions = [s for s in sent.values() if s.kind == ORDER]
    seen = {
        "placed": len(placed),
        "started": sum(1 for s in order_sessions if s.start_status == "Accepted"),
        # an order is settled by its transaction's end or its signed settlement, the first
        "settled": sum(1 for s in order_sessions if s.ended or s.settlement == "Accepted"),
        "signed_settlements": sum(1 for s in order_sessions if s.settlement == "Accepted"),
        "synced": sum(1 for s in order_sessions if s.synced == "Accepted"),
        "captured": expected.captured,
    }
    db = {
        "placed": len(mine),
        "started": sum(1 for r in mine if r[2]),
        "settled": sum(1 for r in mine if r[3]),
        "captured": sum(1 for status in paid.values() if status == "captured"),
    }
    mismatched = [k for k in db if db[k] != seen[k]]
    rfid_refused = sum(
        1 for s in sent.values() if s.kind == RFID and s.start_status not in ("", "Accepted")
    )
    ok = not (lost_starts or lost_ends or duplicated or unexpected or twice or mismatched)
    ok = ok and not rfid_refused
    return {
        "ok": ok,
        "sessions": {
            "started_answered": len(answered),
            "by_kind": dict(by_kind),
            "paid_share": by_kind[ORDER] / len(answered) if answered else 0.0,
            "start_statuses": dict(statuses),
            "ended_answered": sum(1 for s in sent.values() if s.ended),
            "in_database": sum(stored.values()),
            "lost_starts": lost_starts,
            "lost_ends": lost_ends,
            "duplicated": duplicated,
            "unexpected": unexpected,
            "rfid_refused": rfid_refused,
        },
        "orders_seen": seen,
        "orders_in_database": db,
        "orders_mismatched": mismatched,
        "charged_twice": twice,
    }


def check_table(result: dict[str, Any]) -> Iterable[str]:
    s, seen, db = result["sessions"], result["orders_seen"], result["orders_in_database"]
    yield (
        f"sessions     {s['started_answered']} started ({s['by_kind'].get(RFID, 0)} RFID, "
        f"{s['by_kind'].get(ORDER, 0)} paid orders = {100 * s['paid_share']:.0f} %), "
        f"{s['ended_answered']} ended; start answers {s['start_statuses']}"
    )
    yield (
        f"orders       placed {seen['placed']}  started {seen['started']}  settled "
        f"{seen['settled']} (signed Settlement accepted {seen['signed_settlements']}, Synced "
        f"{seen['synced']})  captured {seen['captured']}"
    )
    yield (
        f"database     {s['in_database']} sessions; orders placed {db['placed']} started "
        f"{db['started']} settled {db['settled']} captured {db['captured']}; lost "
        f"{s['lost_starts']} starts / {s['lost_ends']} ends, duplicated {s['duplicated']}, "
        f"unexpected {s['unexpected']}, charged twice {result['charged_twice']}"
    )
    verdict = "OK" if result["ok"] else f"MISMATCH {result['orders_mismatched'] or ''}"
    yield f"check        {verdict}"
