"""On PostgreSQL the reader thread (``Database.reader``: the handshake's password hash, id-tag
and order lookups, the driver's bearer check) reads without a transaction block: each
statement is its own transaction, so a read is one round trip, with no BEGIN before it and
no COMMIT after. The store writer's thread keeps its transactions."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Connection

from csms.store.db import Database

pytestmark = pytest.mark.postgres
# in a transaction block a later statement starts after the transaction did; a statement
# that is a transaction of its own starts with it
SAME_START = "SELECT statement_timestamp() = transaction_timestamp()"


def _second_statement_starts_its_transaction(conn: Connection) -> bool:
    conn.exec_driver_sql("SELECT 1")
    return bool(conn.exec_driver_sql(SAME_START).scalar())


async def test_a_read_is_not_wrapped_in_a_transaction_block(pg_url: str) -> None:
    db = Database.connect(pg_url)
    try:
        assert await db.reader.run(_second_statement_starts_its_transaction)
        assert not await db.worker.run(_second_statement_starts_its_transaction)
    finally:
        await db.dispose()
