"""Database functions for chargers' presence secrets, the keys of their dynamic
identification codes (keyword-only, async)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models_money import PresenceSecret


async def get_presence_secret(session: AsyncSession, charger_id: str) -> PresenceSecret | None:
    return await session.get(PresenceSecret, charger_id)


async def set_presence_secret(
    session: AsyncSession, *, charger_id: str, secret_hex: str, now: datetime
) -> PresenceSecret:
    """Stores (or replaces) the charger's secret, created ``now``, and commits."""
    row = await session.get(PresenceSecret, charger_id)
    if row is None:
        row = PresenceSecret(charger_id=charger_id, secret_hex=secret_hex, created_at=now)
    else:
        row.secret_hex, row.created_at = secret_hex, now
    session.add(row)
    await session.commit()
    return row


async def delete_presence_secret(session: AsyncSession, *, charger_id: str) -> None:
    """Forgets the charger's secret (if it has one) and commits."""
    row = await session.get(PresenceSecret, charger_id)
    if row is not None:
        await session.delete(row)
        await session.commit()
