"""Reservations the operator sent chargers: one row per (charger, OCPP reservation id).

A ReserveNow is stored before it is sent (``requested``), so that a reservation whose answer
never came is still on the list; its answer then makes it ``active`` or ``refused``. The later
steps (cancelled, used, expired, removed) are conditional updates from the states they may
follow, so a late or repeated message never revives a finished reservation.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models import Reservation

OPEN = ("requested", "active")  # states a reservation can still end from
ENDED = ("cancelled", "used", "expired", "removed")


async def record_request(session: AsyncSession, row: Reservation) -> bool:
    """Stores a ReserveNow about to be sent, replacing the charger's row of the same id (the
    charger replaces its reservation too); False if the charger is gone."""
    existing = await _get(session, row.charger_id, row.reservation_id)
    if existing is not None:
        for name in ("evse_id", "id_token", "id_token_type", "group_id_token", "expires_at"):
            setattr(existing, name, getattr(row, name))
        existing.state, existing.answer, existing.transaction_id = "requested", None, None
        existing.created_at = existing.updated_at = row.created_at
        row = existing
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:  # the charger's row is gone (or a concurrent insert of the id)
        await session.rollback()
        return False
    return True


async def record_answer(
    session: AsyncSession,
    *,
    charger_id: str,
    reservation_id: int,
    answer: str,
    accepted: bool | None,
    now: datetime,
) -> None:
    """The charger's answer to ReserveNow: its status, or a CALLERROR code (``accepted``
    True or False), or ``NoAnswer`` (None: the charger may hold it, it stays ``requested``)."""
    state = "requested" if accepted is None else "active" if accepted else "refused"
    await _step(
        session,
        charger_id,
        reservation_id,
        from_states=("requested",),
        now=now,
        state=state,
        answer=answer[:32],
    )


async def end(
    session: AsyncSession,
    *,
    charger_id: str,
    reservation_id: int,
    state: str,
    now: datetime,
    transaction_id: str | None = None,
) -> bool:
    """Ends an open reservation (``cancelled``, ``used``, ``expired``, ``removed``); False if
    there was no open reservation of that id."""
    assert state in ENDED, state
    values: dict[str, object] = {"state": state}
    if transaction_id is not None:
        values["transaction_id"] = transaction_id[:36]
    return await _step(session, charger_id, reservation_id, from_states=OPEN, now=now, **values)


async def list_reservations(
    session: AsyncSession,
    *,
    charger_id: str,
    now: datetime,
    state: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[Reservation]:
    """A charger's reservations, newest first, optionally only those in ``state`` as the
    operator sees it (an ``active`` one whose expiry is past ``now`` is ``expired``)."""
    query = select(Reservation).where(Reservation.charger_id == charger_id)
    lapsed = and_(col(Reservation.state) == "active", col(Reservation.expires_at) <= now)
    if state == "expired":
        query = query.where(or_(col(Reservation.state) == "expired", lapsed))
    elif state == "active":
        query = query.where(col(Reservation.state) == "active", col(Reservation.expires_at) > now)
    elif state is not None:
        query = query.where(col(Reservation.state) == state)
    query = query.order_by(col(Reservation.id).desc()).offset(offset).limit(limit)
    return list((await session.exec(query)).all())


async def _get(session: AsyncSession, charger_id: str, reservation_id: int) -> Reservation | None:
    query = select(Reservation).where(
        Reservation.charger_id == charger_id, Reservation.reservation_id == reservation_id
    )
    return (await session.exec(query)).first()


async def _step(
    session: AsyncSession,
    charger_id: str,
    reservation_id: int,
    *,
    from_states: tuple[str, ...],
    now: datetime,
    **values: object,
) -> bool:
    statement = (
        update(Reservation)
        .where(
            col(Reservation.charger_id) == charger_id,
            col(Reservation.reservation_id) == reservation_id,
            col(Reservation.state).in_(from_states),
        )
        .values(updated_at=now, **values)
    )
    result = await session.exec(statement)
    await session.commit()
    return bool(result.rowcount)
