"""The hot paths keep their statement budget (docs/benchmarks.md, "After the hot-path rework").

Each SQL statement through SQLAlchemy's asyncio layer costs about ten times what SQLite takes
to run it, so the number of statements per order, settlement and capture is the throughput.
A change that adds a lookup fails here and has to say why (and update the figures).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.csms.payments_orders.conftest import World

# (SQLite, PostgreSQL): the wallet lock carries its reads in RETURNING only on SQLite
BUDGET = {"order": (6, 7), "settlement": (6, 6), "capture": (7, 8)}


@contextmanager
def counted(world: World) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split("\n")[0][:80])

    engine = world.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_order_settlement_and_capture_stay_within_their_statement_budget(
    world: World,
) -> None:
    column = 0 if world.db.engine.dialect.name == "sqlite" else 1
    await world.order()  # the first run of each statement may read the schema: not counted
    with counted(world) as statements:
        order = await world.order()
    assert len(statements) == BUDGET["order"][column], statements
    with counted(world) as statements:
        outcome = await world.service.submit(world.settlement(order), source="upload")
    assert len(statements) == BUDGET["settlement"][column], statements
    assert outcome.payment is not None and outcome.payment.id is not None
    with counted(world) as statements:
        receipt = await world.confirm(outcome.payment.id)
    assert len(statements) == BUDGET["capture"][column], statements
    assert receipt.amount == outcome.payment.amount
    # and the work was done: the order is paid and its hold is gone
    assert (await world.reload(order)).status == "paid"
