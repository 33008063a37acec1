"""Provisioning block: BootNotification, Heartbeat, StatusNotification, connection state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from csms.context import CsmsContext
from csms.protocol.registration import ACCEPTED as ACCEPTED  # re-exported
from csms.protocol.registration import PENDING as PENDING  # re-exported
from csms.protocol.registration import REJECTED
from csms.store import chargers as store
from csms.store.writer import Batch


@dataclass(frozen=True, slots=True)
class BootInfo:
    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None


@dataclass(frozen=True, slots=True)
class BootAnswer:
    """``status`` is the charger's registration (Accepted / Pending / Rejected)."""

    status: str
    interval_s: int
    current_time: datetime


async def boot(ctx: CsmsContext, charger_id: str, version: str, info: BootInfo) -> BootAnswer:
    now = ctx.clock()

    def op(batch: Batch) -> str | None:
        return store.record_boot(
            batch,
            charger_id=charger_id,
            version=version,
            vendor=info.vendor,
            model=info.model,
            serial_number=info.serial_number,
            firmware_version=info.firmware_version,
            now=now,
        )

    status = await ctx.writer.execute(op, charger_id)
    if status is None:  # deleted while connected
        return BootAnswer(REJECTED, ctx.settings.heartbeat_interval_s, now)
    return BootAnswer(status, ctx.settings.heartbeat_interval_s, now)


async def heartbeat(ctx: CsmsContext, charger_id: str) -> datetime:
    """Answered at once: ``last_seen`` is written by the store writer's periodic flush."""
    now = ctx.clock()
    ctx.writer.touch(charger_id, now)
    await ctx.writer.settle_presence(charger_id)  # only right after connecting
    return now


async def connector_status(
    ctx: CsmsContext,
    charger_id: str,
    *,
    evse_id: int,
    connector_id: int,
    status: str,
    error_code: str | None,
    timestamp: datetime | None,
) -> None:
    """Stores a status (group commit); 1.6 connector 0 (the charger itself) goes on the
    charger row."""
    now = ctx.clock()
    at = timestamp or now

    def op(batch: Batch) -> None:
        if evse_id == 0:
            store.record_charger_status(batch, charger_id=charger_id, status=status, now=now)
            return
        store.record_evse_status(
            batch,
            charger_id=charger_id,
            evse_id=evse_id,
            connector_id=connector_id,
            status=status,
            error_code=error_code,
            at=at,
        )

    await ctx.writer.execute(op, charger_id)


async def connected(ctx: CsmsContext, charger_id: str, version: str) -> None:
    """Online: stored by the store writer before the answer to the charger's next CALL."""
    ctx.writer.set_presence(charger_id, online=True, version=version, now=ctx.clock())


async def disconnected(ctx: CsmsContext, charger_id: str) -> None:
    ctx.writer.set_presence(charger_id, online=False, version=None, now=ctx.clock())
