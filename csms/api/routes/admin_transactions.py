"""Operator API: transactions, filtered by charger and time, shown with meter values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status

from csms.api.deps import SessionDep, ViewerDep
from csms.api.params import Offset, RowIdPath
from csms.api.responses import errors
from csms.store import transactions_admin as store
from csms.store.meter_values import samples_of
from csms.store.models import (
    MeterValuePublic,
    Transaction,
    TransactionDetail,
    TransactionEventPublic,
    TransactionPublic,
)

router = APIRouter(
    prefix="/api/v1/admin/transactions", tags=["admin: transactions"], responses=errors(401, 403)
)


@router.get(
    "",
    response_model=list[TransactionPublic],
    responses=errors(422, notes={422: "an invalid filter, or until not after since"}),
)
async def list_transactions(
    session: SessionDep,
    _: ViewerDep,
    charger_id: Annotated[str | None, Query(max_length=48)] = None,
    state: Literal["Started", "Ended"] | None = None,
    since: Annotated[datetime | None, Query(description="started at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="started before (ISO 8601)")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Transaction]:
    """Newest first. ``flags`` marks what the operator should look at; ``state`` keeps the
    running (``Started``) or the finished (``Ended``) ones."""
    since, until = _aware(since), _aware(until)
    if since is not None and until is not None and until <= since:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "until must be after since")
    return await store.list_transactions(
        session,
        charger_id=charger_id,
        state=state,
        since=since,
        until=until,
        offset=offset,
        limit=limit,
    )


@router.get("/{transaction_pk}", response_model=TransactionDetail, responses=errors(404))
async def show_transaction(
    transaction_pk: RowIdPath, session: SessionDep, _: ViewerDep
) -> TransactionDetail:
    """One transaction (by the ``id`` of the list) with its meter values in time order, its
    2.0.1 TransactionEvents by ``seqNo``, and the order it charged (``order_id``) if any."""
    txn = await store.get_transaction(session, transaction_pk)
    if txn is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no transaction {transaction_pk}")
    values = await samples_of(session, transaction_pk)
    events = await store.events_of(
        session, charger_id=txn.charger_id, transaction_id=txn.transaction_id
    )
    return TransactionDetail(
        **txn.model_dump(),
        meter_values=[MeterValuePublic.model_validate(v, from_attributes=True) for v in values],
        events=[TransactionEventPublic.model_validate(e, from_attributes=True) for e in events],
        order_id=await store.order_of_transaction(session, transaction_pk),
    )


def _aware(moment: datetime | None) -> datetime | None:
    """A time given without a zone is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
