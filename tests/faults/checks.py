"""What a fault test checks on the database afterwards, from the test process: the money and
ledger invariants, and the rows as plain SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from config.settings import Settings
from csms.store.db import Database
from qr_extension.tariff import _round_half_up
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


def ocpp_cost(wh: int) -> int:
    """What the default billing model charges for ``wh`` Wh and no charging time (an OCPP
    transaction whose start and end carry the same instant)."""
    energy_price = Settings().default_tariff_energy  # 1/10,000 of the unit per kWh
    return _round_half_up(energy_price * wh * 100, 10_000 * 1000)
