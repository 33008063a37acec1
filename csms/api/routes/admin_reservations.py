"""Operator API: the reservations sent to a charger (``ReserveNow`` through the commands
endpoint) and what became of each."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from csms.api.deps import CtxDep, SessionDep, ViewerDep
from csms.api.params import Offset
from csms.api.responses import errors
from csms.store import chargers as store
from csms.store.models import ReservationPublic
from csms.store.reservations import list_reservations

router = APIRouter(
    prefix="/api/v1/admin/chargers", tags=["admin: reservations"], responses=errors(401, 403)
)


class ReservationState(StrEnum):
    requested = "requested"
    active = "active"
    refused = "refused"
    cancelled = "cancelled"
    used = "used"
    expired = "expired"
    removed = "removed"


@router.get(
    "/{charger_id}/reservations",
    response_model=list[ReservationPublic],
    responses=errors(404, notes={404: "no such charger"}),
)
async def reservations(
    charger_id: str,
    ctx: CtxDep,
    session: SessionDep,
    _: ViewerDep,
    state: Annotated[ReservationState | None, Query(description="only in this state")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ReservationPublic]:
    """Newest first: each reservation with its EVSE (null: any), id token (for a driver's
    order, the order id), expiry, the charger's answer and its state: ``requested`` (no
    answer yet, or none came: ``answer`` ``NoAnswer``), ``active``, ``refused`` (``answer``
    says how), ``cancelled``, ``used`` (with the ``transaction_id`` that used it),
    ``expired`` (reported by a 2.0.1 charger, or its expiry has passed) or ``removed``."""
    if await store.get_charger(session, charger_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no charger {charger_id!r}")
    now = ctx.clock()
    rows = await list_reservations(
        session,
        charger_id=charger_id,
        now=now,
        state=None if state is None else state.value,
        offset=offset,
        limit=limit,
    )
    return [ReservationPublic.of(row, now=now) for row in rows]
