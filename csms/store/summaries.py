"""Counts over the whole store for monitoring (metrics gauges): cheap aggregate reads."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from csms.store.models_orders import Order
from csms.store.writer import table_of

ORDERS = table_of(Order)
HELD_STATES = ("created", "started", "settled", "cancelling")  # the hold is still placed


def order_summary(conn: Connection) -> tuple[dict[str, int], tuple[int, int]]:
    """Orders by state, and (count, amount) of the orders whose hold is still placed."""
    by_state = {
        str(state): int(count)
        for state, count in conn.execute(
            select(ORDERS.c.status, func.count()).group_by(ORDERS.c.status)
        )
    }
    held = conn.execute(
        select(func.count(), func.coalesce(func.sum(ORDERS.c.hold_amount), 0)).where(
            ORDERS.c.status.in_(HELD_STATES), ORDERS.c.hold_released_at.is_(None)
        )
    ).one()
    return by_state, (int(held[0]), int(held[1]))
