"""Receipt numbers in the database.

A series' counter row is incremented by one statement, ``INSERT ... VALUES (series, 1) ON
CONFLICT (series) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq``, in the
transaction that inserts the receipt: on PostgreSQL the row lock makes a concurrent issuer
wait for this transaction's end and then count on from its number (a first insert racing
another waits for it and turns into the update); on SQLite the write lock does the same. A
rolled-back capture takes its increment with it, so the numbers of a series are unique and
leave no gaps.
"""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from csms.store.models_orders import ReceiptCounter
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
