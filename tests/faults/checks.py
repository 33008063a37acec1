"""What a fault test checks on the database afterwards, from the test process: the money and
ledger invariants, and the rows as plain SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from csms.store.db import Database
from tests.csms.ledger_invariants import assert_ledger_consistent
from tests.csms.payments_orders.invariants import assert_money_consistent


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
