"""Operator API: transactions, filtered by charger and time, shown with meter values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from csms.api.deps import SessionDep, ViewerDep
from csms.api.params import Offset, RowIdPath
from csms.api.responses import errors
from csms.store import transactions_admin as store
from csms.store.meter_values import samples_of
from csms.store.models import MeterValuePublic, Transaction, TransactionDetail, TransactionPublic

router = APIRouter(
    prefix="/api/v1/admin/transactions", tags=["admin: transactions"], responses=errors(401, 403)
)


@router.get("", response_model=list[TransactionPublic])
async def list_transactions(
    session: SessionDep,
    _: ViewerDep,
    charger_id: str | None = None,
    since: Annotated[datetime | None, Query(description="started at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="started before (ISO 8601)")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Transaction]:
    """Newest first. ``flags`` marks what the operator should look at."""
    return await store.list_transactions(
        session,
        charger_id=charger_id,
        since=_aware(since),
        until=_aware(until),
        offset=offset,
        limit=limit,
    )


@router.get("/{transaction_pk}", response_model=TransactionDetail, responses=errors(404))
async def show_transaction(
    transaction_pk: RowIdPath, session: SessionDep, _: ViewerDep
) -> TransactionDetail:
    """One transaction (by the ``id`` of the list) with its meter values in time order."""
    txn = await store.get_transaction(session, transaction_pk)
    if txn is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no transaction {transaction_pk}")
    values = await samples_of(session, transaction_pk)
    return TransactionDetail(
        **txn.model_dump(),
        meter_values=[MeterValuePublic.model_validate(v, from_attributes=True) for v in values],
    )


def _aware(moment: datetime | None) -> datetime | None:
    """A time given without a zone is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
