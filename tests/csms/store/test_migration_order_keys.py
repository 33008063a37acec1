"""Migration 0018 on a database with orders: they keep no key; a driver's key is unique per
driver (orders without one never collide); a downgrade keeps the orders and their flags, and
a new upgrade leaves the models' schema."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from csms.store.db import Database, migrate
from csms.store.types import UtcDateTime

from .test_migrations import _diff, _to

AT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
_CHARGERS = sa.table(
    "chargers",
    *(sa.column(c) for c in ("id", "registration", "online")),
    sa.column("created_at", UtcDateTime),
)
_COLUMNS = ("id", "user_id", "charger_id", "status", "request_kind", "tariff_claim")
_ORDERS = sa.table(
    "orders",
    *(sa.column(c) for c in (*_COLUMNS, "limits_claim", "hold_amount", "currency")),
    *(sa.column(c) for c in ("start_token", "kid", "idempotency_key")),
    *(sa.column(t, UtcDateTime) for t in ("issued_at", "expires_at", "created_at", "updated_at")),
)
_FLAGS = sa.table(
    "order_flags",
    *(sa.column(c) for c in ("order_id", "kind", "detail")),
    sa.column("created_at", UtcDateTime),
)


def _order(connection: Connection, order_id: str, user_id: int, key: str | None = None) -> None:
    values = {
        "id": order_id, "user_id": user_id, "charger_id": "M1", "status": "created",
        "request_kind": "amount", "tariff_claim": "[]", "limits_claim": "[2000]",
        "hold_amount": 2000, "currency": "CNY", "start_token": "t", "kid": "k",
        "issued_at": AT, "expires_at": AT, "created_at": AT, "updated_at": AT,
    }  # fmt: skip
    if key is not None:
        values["idempotency_key"] = key
    connection.execute(_ORDERS.insert().values(**values))


def _legacy(connection: Connection) -> None:
    """A charger, an order and its flag as revision 0017 stored them."""
    connection.execute(
        _CHARGERS.insert().values(id="M1", registration="Accepted", online=False, created_at=AT)
    )
    _order(connection, "OLD1", 1)
    connection.execute(
        _FLAGS.insert().values(order_id="OLD1", kind="cancelled", detail="", created_at=AT)
    )


def _rows(connection: Connection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in connection.execute(sa.text(sql))]


async def test_order_keys_are_unique_per_driver_and_the_downgrade_keeps_orders(
    db_url: str,
) -> None:
    db = Database.connect(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to, "0017")
            await conn.run_sync(_legacy)
        await migrate(db.engine)
        async with db.engine.begin() as conn:
            assert await conn.run_sync(_diff) == []
            await conn.run_sync(_order, "NEW1", 1)  # no key, as OLD1: no collision
            await conn.run_sync(_order, "KEY1", 1, "tap-1")
            await conn.run_sync(_order, "KEY2", 2, "tap-1")  # another driver's
            await conn.run_sync(_order, "KEY3", 1, "tap-2")
        with pytest.raises(IntegrityError):
            async with db.engine.begin() as conn:
                await conn.run_sync(_order, "TWIN", 1, "tap-1")
        sql = "SELECT id, user_id, idempotency_key FROM orders ORDER BY id"
        async with db.engine.begin() as conn:
            assert await conn.run_sync(_rows, sql) == [
                ("KEY1", 1, "tap-1"),
                ("KEY2", 2, "tap-1"),
                ("KEY3", 1, "tap-2"),
                ("NEW1", 1, None),
                ("OLD1", 1, None),
            ]
            await conn.run_sync(_to, "0017", down=True)
            ids = await conn.run_sync(_rows, "SELECT id FROM orders ORDER BY id")
            flags = await conn.run_sync(_rows, "SELECT order_id, kind FROM order_flags")
        assert ids == [("KEY1",), ("KEY2",), ("KEY3",), ("NEW1",), ("OLD1",)]
        assert flags == [("OLD1", "cancelled")]
        await migrate(db.engine)
        async with db.engine.begin() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()
