"""Firmware / log status history, the charging profiles the CSMS set, and the upload index.

Written through a pooled session like the notifications: each of these is rare and worth its
own commit. Status reports are bounded per charger (the oldest beyond ``keep`` go in the same
transaction). An upload is claimed exactly once by a conditional update, never by a check in
Python.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models_remote import ChargerStatusReport, ChargerUpload, ChargingProfileRecord
from csms.store.writer import table_of

REPORTS = table_of(ChargerStatusReport)
PROFILES = table_of(ChargingProfileRecord)
UPLOADS = table_of(ChargerUpload)

_NEWEST_BEYOND = (
    core_select(REPORTS.c.id)
    .where(REPORTS.c.charger_id == bindparam("cid"))
    .order_by(REPORTS.c.id.desc())
    .offset(bindparam("keep"))
    .limit(1)
)


# --- firmware and log status history -------------------------------------------------------


async def add_status_report(
    session: AsyncSession, report: ChargerStatusReport, *, keep: int
) -> bool:
    """Stores one step and prunes the charger's oldest beyond ``keep``; False if the charger
    is gone."""
    session.add(report)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return False
    oldest_kept = await session.scalar(_NEWEST_BEYOND, {"cid": report.charger_id, "keep": keep})
    if oldest_kept is not None:
        await session.exec(
            delete(REPORTS).where(
                REPORTS.c.charger_id == report.charger_id, REPORTS.c.id <= oldest_kept
            )
        )
    await session.commit()
    return True


async def answer_request(
    session: AsyncSession,
    *,
    charger_id: str,
    kind: str,
    action: str,
    request_id: int | None,
    sent_status: str,
    status: str,
) -> None:
    """Gives the newest unanswered step of this request the charger's answer."""
    newest = (
        select(ChargerStatusReport.id)
        .where(
            ChargerStatusReport.charger_id == charger_id,
            ChargerStatusReport.kind == kind,
            ChargerStatusReport.action == action,
            ChargerStatusReport.status == sent_status,
            ChargerStatusReport.request_id == request_id
            if request_id is not None
            else col(ChargerStatusReport.request_id).is_(None),
        )
        .order_by(col(ChargerStatusReport.id).desc())
        .limit(1)
        .scalar_subquery()
    )
    await session.exec(
        update(ChargerStatusReport)
        .where(col(ChargerStatusReport.id) == newest)
        .values(status=status[:50])
    )
    await session.commit()


async def list_status_reports(
    session: AsyncSession, *, charger_id: str, kind: str, offset: int = 0, limit: int = 100
) -> list[ChargerStatusReport]:
    """A charger's steps of one kind, newest first."""
    query = (
        select(ChargerStatusReport)
        .where(ChargerStatusReport.charger_id == charger_id, ChargerStatusReport.kind == kind)
        .order_by(col(ChargerStatusReport.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def latest_request_id(session: AsyncSession, *, charger_id: str, kind: str) -> int | None:
    """The request id of the newest request of ``kind`` the CSMS sent the charger."""
    query = (
        select(ChargerStatusReport.request_id)
        .where(
            ChargerStatusReport.charger_id == charger_id,
            ChargerStatusReport.kind == kind,
            col(ChargerStatusReport.request_id).is_not(None),
        )
        .order_by(col(ChargerStatusReport.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


# --- charging profiles ---------------------------------------------------------------------


async def add_profile(session: AsyncSession, record: ChargingProfileRecord) -> bool:
    """Stores a profile the charger accepted; an active one it replaces (same profile id, or
    the same EVSE, purpose and stack level, as OCPP says) is marked cleared ``replaced``.
    False if the charger is gone (deleted while the command was on its way)."""
    same_id = PROFILES.c.profile_id == record.profile_id
    same_slot = (
        (PROFILES.c.evse_id == record.evse_id)
        & (PROFILES.c.purpose == record.purpose)
        & (PROFILES.c.stack_level == record.stack_level)
    )
    await session.exec(
        update(PROFILES)
        .where(
            PROFILES.c.charger_id == record.charger_id,
            PROFILES.c.cleared_at.is_(None),
            same_id | same_slot,
        )
        .values(cleared_at=record.set_at, cleared_by="replaced")
    )
    session.add(record)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def clear_profiles(
    session: AsyncSession,
    *,
    charger_id: str,
    at: datetime,
    profile_id: int | None = None,
    evse_id: int | None = None,
    purpose: str | None = None,
    stack_level: int | None = None,
) -> int:
    """Marks the active profiles that match as cleared; by id when given, else by every
    criterion given (none: all of the charger's). How many."""
    query = update(PROFILES).where(
        PROFILES.c.charger_id == charger_id, PROFILES.c.cleared_at.is_(None)
    )
    if profile_id is not None:
        query = query.where(PROFILES.c.profile_id == profile_id)
    else:
        if evse_id is not None:
            query = query.where(PROFILES.c.evse_id == evse_id)
        if purpose is not None:
            query = query.where(PROFILES.c.purpose == purpose)
        if stack_level is not None:
            query = query.where(PROFILES.c.stack_level == stack_level)
    result = await session.exec(query.values(cleared_at=at, cleared_by="ClearChargingProfile"))
    await session.commit()
    return int(result.rowcount or 0)


async def list_profiles(
    session: AsyncSession, *, charger_id: str, active_only: bool, offset: int = 0, limit: int = 100
) -> list[ChargingProfileRecord]:
    """A charger's profiles, newest first; only those not cleared with ``active_only``."""
    query = select(ChargingProfileRecord).where(ChargingProfileRecord.charger_id == charger_id)
    if active_only:
        query = query.where(col(ChargingProfileRecord.cleared_at).is_(None))
    query = query.order_by(col(ChargingProfileRecord.id).desc()).offset(offset).limit(limit)
    return list((await session.exec(query)).all())


# --- uploads -------------------------------------------------------------------------------


async def add_upload_slot(session: AsyncSession, slot: ChargerUpload) -> int:
    """Stores an offered upload; its id."""
    session.add(slot)
    await session.commit()
    await session.refresh(slot)
    assert slot.id is not None
    return slot.id


async def upload_slot(
    session: AsyncSession, *, charger_id: str, token_hash: str
) -> ChargerUpload | None:
    """The offered upload of ``charger_id`` whose token hashes to ``token_hash``."""
    query = select(ChargerUpload).where(
        ChargerUpload.charger_id == charger_id, ChargerUpload.token_hash == token_hash
    )
    return (await session.exec(query)).first()


async def claim_upload(
    session: AsyncSession,
    *,
    slot_id: int,
    name: str,
    size: int,
    sha256: str,
    at: datetime,
) -> bool:
    """Records the file of an offered upload; False when it was already received (the token
    is one-time: the second upload loses, whatever the order they were streamed in)."""
    result = await session.exec(
        update(UPLOADS)
        .where(UPLOADS.c.id == slot_id, UPLOADS.c.received_at.is_(None))
        .values(name=name, size=size, sha256=sha256, received_at=at)
    )
    await session.commit()
    return bool(result.rowcount)


async def list_uploads(
    session: AsyncSession, *, charger_id: str, offset: int = 0, limit: int = 100
) -> list[ChargerUpload]:
    """The files a charger uploaded, newest first."""
    query = (
        select(ChargerUpload)
        .where(ChargerUpload.charger_id == charger_id, col(ChargerUpload.received_at).is_not(None))
        .order_by(col(ChargerUpload.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def get_upload(
    session: AsyncSession, *, charger_id: str, file_id: int
) -> ChargerUpload | None:
    """One received file of the charger, or None."""
    row = await session.get(ChargerUpload, file_id)
    if row is None or row.charger_id != charger_id or row.received_at is None:
        return None
    return row
