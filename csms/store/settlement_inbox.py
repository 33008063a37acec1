"""Database functions for the settlement inbox: signed settlements as received, once per token
(keyword-only, async)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models import SettlementInbox


async def add_to_inbox(
    session: AsyncSession,
    *,
    charger_id: str,
    token: str,
    token_sha256: str,
    source: str,
    now: datetime,
) -> bool:
    """Stores a received settlement token and commits; False when the same token (by its
    sha256) is stored already."""
    session.add(
        SettlementInbox(
            charger_id=charger_id,
            token=token,
            token_sha256=token_sha256,
            source=source,
            received_at=now,
        )
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True
