"""Firmware, diagnostics/log and security block: status reports kept for the operator."""

from __future__ import annotations

import logging
from datetime import datetime

from csms.context import CsmsContext
from csms.store import chargers as store

LOG = logging.getLogger("csms.monitoring")


async def firmware_status(ctx: CsmsContext, charger_id: str, status: str) -> None:
    async with ctx.db.session() as session:
        charger = await store.get_charger(session, charger_id)
        if charger is not None:
            charger.firmware_status = status[:40]
            session.add(charger)
            await session.commit()


async def diagnostics_status(ctx: CsmsContext, charger_id: str, status: str) -> None:
    """1.6 DiagnosticsStatusNotification and 2.0.1 LogStatusNotification."""
    async with ctx.db.session() as session:
        charger = await store.get_charger(session, charger_id)
        if charger is not None:
            charger.diagnostics_status = status[:40]
            session.add(charger)
            await session.commit()


def security_event(
    charger_id: str, event_type: str, timestamp: datetime, tech_info: str | None
) -> None:
    """Security events are logged (the frame itself is in the message log)."""
    LOG.warning(
        "%s: security event %s at %s %s", charger_id, event_type, timestamp, tech_info or ""
    )
