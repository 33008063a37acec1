"""The reads of the reconciliation report: orders of a creation window and, for a set of
orders, their session records, payments and flags (one query each)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models_orders import Order, OrderFlag, Payment, SettlementRecord


async def orders_created(
    session: AsyncSession, *, since: datetime | None, until: datetime | None, limit: int
) -> list[Order]:
    """Orders created in ``[since, until)`` (either end open), oldest first."""
    query = select(Order)
    if since is not None:
        query = query.where(col(Order.created_at) >= since)
    if until is not None:
        query = query.where(col(Order.created_at) < until)
    return list((await session.exec(query.order_by(col(Order.created_at)).limit(limit))).all())


async def records_of_orders(
    session: AsyncSession, *, order_ids: Sequence[str]
) -> list[SettlementRecord]:
    rows = await session.exec(
        select(SettlementRecord).where(col(SettlementRecord.order_id).in_(order_ids))
    )
    return list(rows.all())


async def payments_of_orders(session: AsyncSession, *, order_ids: Sequence[str]) -> list[Payment]:
    rows = await session.exec(select(Payment).where(col(Payment.order_id).in_(order_ids)))
    return list(rows.all())


async def flags_of_orders(session: AsyncSession, *, order_ids: Sequence[str]) -> list[OrderFlag]:
    rows = await session.exec(select(OrderFlag).where(col(OrderFlag.order_id).in_(order_ids)))
    return list(rows.all())
