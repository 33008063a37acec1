"""Messages chargers send unasked, kept for the operator: written once each, read newest first.

Written through a pooled session, not the store writer: these messages are rare (security
events, firmware and log progress, monitoring events, certificate requests) and each one is
worth its own commit. Each charger keeps its newest ``keep`` rows; older ones are deleted in
the same transaction, so a charger that floods NotifyEvent cannot grow the table without bound.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models import ChargerNotification
from csms.store.writer import table_of

NOTIFICATIONS = table_of(ChargerNotification)

_NEWEST_BEYOND = (
    core_select(NOTIFICATIONS.c.id)
    .where(NOTIFICATIONS.c.charger_id == bindparam("cid"))
    .order_by(NOTIFICATIONS.c.id.desc())
    .offset(bindparam("keep"))
    .limit(1)
)
_DELETE_UP_TO = delete(NOTIFICATIONS).where(
    NOTIFICATIONS.c.charger_id == bindparam("cid"), NOTIFICATIONS.c.id <= bindparam("upto")
)


async def add_notification(
    session: AsyncSession, notification: ChargerNotification, *, keep: int
) -> bool:
    """Stores one notification and prunes the charger's oldest beyond ``keep``; False if the
    charger is gone (deleted by the operator while it was connected)."""
    session.add(notification)
    try:
        await session.flush()
    except IntegrityError:  # the charger's row is gone
        await session.rollback()
        return False
    oldest_kept = await session.scalar(
        _NEWEST_BEYOND, {"cid": notification.charger_id, "keep": keep}
    )
    if oldest_kept is not None:
        await session.exec(
            _DELETE_UP_TO, params={"cid": notification.charger_id, "upto": oldest_kept}
        )
    await session.commit()
    return True


async def list_notifications(
    session: AsyncSession,
    *,
    charger_id: str,
    action: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[ChargerNotification]:
    """A charger's notifications, newest first, optionally of one action."""
    query = select(ChargerNotification).where(ChargerNotification.charger_id == charger_id)
    if action is not None:
        query = query.where(ChargerNotification.action == action)
    query = query.order_by(col(ChargerNotification.id).desc()).offset(offset).limit(limit)
    return list((await session.exec(query)).all())
