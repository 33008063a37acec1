"""Provisioning block: BootNotification, Heartbeat, StatusNotification, connection state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from csms.context import CsmsContext
from csms.store import chargers as store

ACCEPTED = "Accepted"
PENDING = "Pending"


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
    async with ctx.db.session() as session:
        charger = await store.get_charger(session, charger_id)
        if charger is None:  # deleted while connected
            return BootAnswer("Rejected", ctx.settings.heartbeat_interval_s, now)
        charger.vendor = info.vendor[:50]
        charger.model = info.model[:50]
        charger.serial_number = info.serial_number
        charger.firmware_version = info.firmware_version
        charger.ocpp_version = version
        charger.last_boot_at = now
        charger.last_seen = now
        session.add(charger)
        await session.commit()
        status = charger.registration
    return BootAnswer(status, ctx.settings.heartbeat_interval_s, now)


async def heartbeat(ctx: CsmsContext, charger_id: str) -> datetime:
    now = ctx.clock()
    async with ctx.db.session() as session:
        await store.touch(session, charger_id=charger_id, now=now)
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
    """Stores a status; 1.6 connector 0 (the charger itself) goes on the charger row."""
    at = timestamp or ctx.clock()
    async with ctx.db.session() as session:
        if evse_id == 0:
            charger = await store.get_charger(session, charger_id)
            if charger is not None:
                charger.status = status
                charger.last_seen = ctx.clock()
                session.add(charger)
                await session.commit()
            return
        await store.upsert_evse_status(
            session,
            charger_id=charger_id,
            evse_id=evse_id,
            connector_id=connector_id,
            status=status,
            error_code=error_code,
            at=at,
        )


async def connected(ctx: CsmsContext, charger_id: str, version: str) -> None:
    async with ctx.db.session() as session:
        await store.set_connection_state(
            session, charger_id=charger_id, online=True, version=version, now=ctx.clock()
        )


async def disconnected(ctx: CsmsContext, charger_id: str) -> None:
    async with ctx.db.session() as session:
        await store.set_connection_state(
            session, charger_id=charger_id, online=False, version=None, now=ctx.clock()
        )
