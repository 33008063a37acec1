"""Receipt numbers in the database.

A series' counter row is incremented by one statement, ``INSERT ... VALUES (series, 1) ON
CONFLICT (series) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq``, in the
transaction that inserts the receipt: on PostgreSQL the row lock makes a concurrent issuer
wait for this transaction's end and then count on from its number (a first insert racing
another waits for it and turns into the update); on SQLite the write lock does the same. A
rolled-back capture takes its increment with it, so the numbers of a series are unique and
leave no gaps.

The counter row is the one row every capture of a series writes, so its lock is held from the
increment to the commit by one capture at a time. On PostgreSQL :func:`insert_numbered` makes
the increment and the receipt's insert one statement (a data-modifying ``WITH``), the last of
the transaction: the lock is held for that statement and the COMMIT, not for further round
trips through a busy event loop (sampled with two CSMS processes, most backends of a
settlement run waited for this lock; docs/benchmarks.md, session 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Insert, Integer, Text, bindparam, cast, func, select
from sqlalchemy import insert as insert_core
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from csms.store.fast import Fast
from csms.store.models_orders import Receipt, ReceiptCounter
from csms.store.rows import loaded
from csms.store.writer import table_of

COUNTERS = table_of(ReceiptCounter)

_NEXT = {
    dialect: insert(COUNTERS)
    .values(series=bindparam("name"), last_seq=1)
    .on_conflict_do_update(index_elements=["series"], set_={"last_seq": COUNTERS.c.last_seq + 1})
    .returning(COUNTERS.c.last_seq)
    for dialect, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def next_seq(session: Session, *, series: str) -> int:
    """The next number of ``series`` (1 for its first receipt), counted in this transaction
    (does not commit: the caller inserts the receipt in the same one)."""
    conn = session.connection()
    return int(conn.execute(_NEXT[conn.dialect.name], {"name": series}).scalar_one())


RECEIPTS = table_of(Receipt)
_INSERT: Insert = insert_core(RECEIPTS).returning(RECEIPTS.c.id, RECEIPTS.c.number)


def _numbered_pg() -> Insert:
    """``WITH n AS (the counter's upsert RETURNING last_seq) INSERT INTO receipts (...,
    number) SELECT ..., :prefix || lpad(last_seq, greatest(:digits, its length), '0') FROM n
    RETURNING id, number`` (``lpad`` would cut a longer number; Python's ``06d`` does not)."""
    n = _NEXT["postgresql"].cte("n")
    seq = cast(n.c.last_seq, Text)
    number = cast(bindparam("prefix"), Text) + func.lpad(
        seq, func.greatest(cast(bindparam("digits"), Integer), func.length(seq)), "0"
    )
    names = [c.name for c in RECEIPTS.c if c.name not in ("id", "number")]
    values = [bindparam(name, type_=RECEIPTS.c[name].type) for name in names]
    return (
        insert_core(RECEIPTS)
        .from_select([*names, "number"], select(*values, number).select_from(n))
        .returning(RECEIPTS.c.id, RECEIPTS.c.number)
    )


_NUMBERED_PG = Fast(_numbered_pg())
"""A prebuilt statement: the capture's kept writes go in its round trip."""


def insert_numbered(
    session: Session, *, values: Mapping[str, Any], series: str, digits: int
) -> Receipt:
    """Inserts the receipt (``values``: its columns but id and number) numbered
    ``{series}{seq:0{digits}d}`` with the series' next ``seq``, in this transaction (does not
    commit; meant as the transaction's last statement: the counter's row stays locked until
    the commit). One statement on PostgreSQL, two on SQLite (whose write lock is held to the
    commit by any write)."""
    conn = session.connection()
    full = dict(values)
    if conn.dialect.name == "postgresql":
        params = {**full, "name": series, "prefix": series, "digits": digits}
        found = _NUMBERED_PG.first(conn, params)
        assert found is not None  # an insert from a one-row select: one row returned
        full["id"], full["number"] = found
    else:
        full["number"] = f"{series}{next_seq(session, series=series):0{digits}d}"
        full["id"], full["number"] = conn.execute(_INSERT, full).one()
    return loaded(Receipt, full)
