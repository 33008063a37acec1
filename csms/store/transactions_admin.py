"""Database functions for the operator's view of transactions (keyword-only, async)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models import Transaction


async def get_transaction(session: AsyncSession, transaction_pk: int) -> Transaction | None:
    return await session.get(Transaction, transaction_pk)


async def list_transactions(
    session: AsyncSession,
    *,
    charger_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[Transaction]:
    """Newest first; ``since`` and ``until`` bound the start time (``until`` excluded)."""
    query = select(Transaction)
    if charger_id is not None:
        query = query.where(Transaction.charger_id == charger_id)
    if since is not None:
        query = query.where(col(Transaction.started_at) >= since)
    if until is not None:
        query = query.where(col(Transaction.started_at) < until)
    query = query.order_by(col(Transaction.started_at).desc(), col(Transaction.id).desc())
    rows = await session.exec(query.offset(offset).limit(limit))
    return list(rows.all())
