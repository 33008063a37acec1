"""Database functions for the operator's view of transactions (keyword-only, async)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models import Transaction, TransactionEventRecord
from csms.store.models_orders import SettlementRecord


async def get_transaction(session: AsyncSession, transaction_pk: int) -> Transaction | None:
    return await session.get(Transaction, transaction_pk)


async def list_transactions(
    session: AsyncSession,
    *,
    charger_id: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[Transaction]:
    """Newest first; ``since`` and ``until`` bound the start time (``until`` excluded),
    ``state`` is ``Started`` or ``Ended``."""
    query = select(Transaction)
    if charger_id is not None:
        query = query.where(Transaction.charger_id == charger_id)
    if state is not None:
        query = query.where(Transaction.state == state)
    if since is not None:
        query = query.where(col(Transaction.started_at) >= since)
    if until is not None:
        query = query.where(col(Transaction.started_at) < until)
    query = query.order_by(col(Transaction.started_at).desc(), col(Transaction.id).desc())
    rows = await session.exec(query.offset(offset).limit(limit))
    return list(rows.all())


async def events_of(
    session: AsyncSession, *, charger_id: str, transaction_id: str
) -> list[TransactionEventRecord]:
    """The 2.0.1 TransactionEvents of one transaction as received, by ``seqNo``."""
    rows = await session.exec(
        select(TransactionEventRecord)
        .where(
            TransactionEventRecord.charger_id == charger_id,
            TransactionEventRecord.transaction_id == transaction_id,
        )
        .order_by(col(TransactionEventRecord.seq_no), col(TransactionEventRecord.id))
    )
    return list(rows.all())


async def order_of_transaction(session: AsyncSession, transaction_pk: int) -> str | None:
    """The order whose session record is this OCPP transaction, if any."""
    rows = await session.exec(
        select(SettlementRecord.order_id).where(
            SettlementRecord.ocpp_transaction_pk == transaction_pk
        )
    )
    return rows.first()
