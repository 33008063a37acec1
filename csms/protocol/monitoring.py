"""Firmware, diagnostics/log and security block: status reports kept for the operator.

The latest firmware and diagnostics/log status is also on the charger's row (the charger
list shows it); every report, security events included, is kept as a notification
(:mod:`csms.protocol.notifications`) with its payload, and firmware and log progress also in
the status history of :mod:`csms.protocol.remote` (tied to its request).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from csms.context import CsmsContext
from csms.protocol import notifications, remote
from csms.store import chargers as store

LOG = logging.getLogger("csms.monitoring")


async def firmware_status(
    ctx: CsmsContext, charger_id: str, action: str, payload: Mapping[str, Any]
) -> None:
    """FirmwareStatusNotification (both versions), 1.6 SignedFirmwareStatusNotification."""
    await _set_status(ctx, charger_id, "firmware_status", str(payload["status"]))
    await notifications.record(ctx, charger_id, action, payload)
    await remote.status_reported(ctx, charger_id, action, payload)


async def diagnostics_status(
    ctx: CsmsContext, charger_id: str, action: str, payload: Mapping[str, Any]
) -> None:
    """1.6 DiagnosticsStatusNotification and LogStatusNotification (both versions)."""
    await _set_status(ctx, charger_id, "diagnostics_status", str(payload["status"]))
    await notifications.record(ctx, charger_id, action, payload)
    await remote.status_reported(ctx, charger_id, action, payload)


async def security_event(ctx: CsmsContext, charger_id: str, payload: Mapping[str, Any]) -> None:
    """Security events are logged as warnings and kept."""
    LOG.warning(
        "%s: security event %s at %s %s",
        charger_id,
        payload.get("type"),
        payload.get("timestamp"),
        payload.get("tech_info") or "",
    )
    await notifications.record(ctx, charger_id, "SecurityEventNotification", payload)


async def _set_status(ctx: CsmsContext, charger_id: str, column: str, status: str) -> None:
    async with ctx.db.session() as session:
        charger = await store.get_charger(session, charger_id)
        if charger is not None:
            setattr(charger, column, status[:40])
            await store.save_charger(session, charger)
