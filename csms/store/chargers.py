"""Database functions for chargers and their EVSE/connector statuses (keyword-only, async)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    all_,
    any_,
    bindparam,
    exists,
    insert,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.errors import StoreError
from csms.store.fast import Fast, pipelined
from csms.store.models import Charger, ChargerKey, ChargerSync, Evse
from csms.store.types import UtcDateTime
from csms.store.writer import Batch, table_of


async def get_charger(session: AsyncSession, charger_id: str) -> Charger | None:
    return await session.get(Charger, charger_id)


async def create_charger(
    session: AsyncSession,
    *,
    charger_id: str,
    password_hash: str | None,
    location: str | None = None,
    evses: int = 0,
    registration: str = "Accepted",
    security_profile: int = 1,
    now: datetime,
) -> Charger:
    """Adds a charger (and ``evses`` EVSEs with one connector each); StoreError if it exists."""
    charger = Charger(
        id=charger_id,
        password_hash=password_hash,
        security_profile=security_profile,
        location=location,
        registration=registration,
        created_at=now,
    )
    session.add(charger)
    for n in range(1, evses + 1):
        session.add(Evse(charger_id=charger_id, evse_id=n, connector_id=1))
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise StoreError(f"charger {charger_id!r} already exists") from exc
    return charger


async def create_chargers(
    session: AsyncSession, *, chargers: list[Charger], evses: list[int], now: datetime
) -> None:
    """Adds every charger of ``chargers`` (``evses[i]`` EVSEs for the i-th) in one transaction:
    all or none; StoreError naming the first that exists."""
    for charger in chargers:
        charger.created_at = now
    session.add_all(chargers)
    try:
        await session.flush()  # the chargers first: the EVSEs refer to them
        session.add_all(
            Evse(charger_id=c.id, evse_id=n, connector_id=1)
            for c, count in zip(chargers, evses, strict=True)
            for n in range(1, count + 1)
        )
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        ids = [c.id for c in chargers]
        taken = await session.exec(select(Charger.id).where(col(Charger.id).in_(ids)).limit(1))
        raise StoreError(f"charger {taken.first()!r} already exists") from exc


async def list_chargers(
    session: AsyncSession,
    *,
    offset: int = 0,
    limit: int = 100,
    registration: str | None = None,
    connected: bool | None = None,
    connected_ids: list[str] | None = None,
) -> list[Charger]:
    """Chargers by id. ``connected`` (with ``connected_ids``, the live sockets of this process)
    keeps those with (True) or without (False) a socket; ``registration`` keeps one
    registration state. Both filters are part of the query, so pages are full."""
    query = select(Charger)
    if connected is not None:
        query = query.where(_among(session, connected_ids or [], connected))
    if registration is not None:
        query = query.where(col(Charger.registration) == registration)
    rows = await session.exec(query.order_by(col(Charger.id)).offset(offset).limit(limit))
    return list(rows.all())


def _among(session: AsyncSession, ids: list[str], connected: bool) -> ColumnElement[bool]:
    """``Charger.id`` among (or not among) ``ids``.

    PostgreSQL gets the ids as one array parameter (its limit is 32,767 parameters per
    statement); SQLite takes up to 250,000 and gets an expanding ``IN``."""
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam("connected_ids", ids, type_=ARRAY(String))
        return col(Charger.id) == any_(array) if connected else col(Charger.id) != all_(array)
    return col(Charger.id).in_(ids) if connected else col(Charger.id).not_in(ids)


async def save_charger(session: AsyncSession, charger: Charger) -> None:
    """Stores the changes made to ``charger`` and commits."""
    session.add(charger)
    await session.commit()


async def delete_charger(session: AsyncSession, *, charger_id: str) -> bool:
    charger = await session.get(Charger, charger_id)
    if charger is None:
        return False
    await session.delete(charger)
    await session.commit()
    return True


async def evses_of(session: AsyncSession, charger_id: str) -> list[Evse]:
    rows = await session.exec(
        select(Evse)
        .where(Evse.charger_id == charger_id)
        .order_by(col(Evse.evse_id), col(Evse.connector_id))
    )
    return list(rows.all())


async def evses_by_charger(session: AsyncSession, charger_ids: list[str]) -> dict[str, list[Evse]]:
    """The EVSEs of many chargers in one query (listing thousands of chargers)."""
    result: dict[str, list[Evse]] = {cid: [] for cid in charger_ids}
    if not charger_ids:
        return result
    rows = await session.exec(
        select(Evse)
        .where(col(Evse.charger_id).in_(charger_ids))
        .order_by(col(Evse.charger_id), col(Evse.evse_id), col(Evse.connector_id))
    )
    for evse in rows.all():
        result[evse.charger_id].append(evse)
    return result


async def pinned_kids(session: AsyncSession, charger_ids: list[str]) -> dict[str, str]:
    """charger id -> kid of its pinned settlement key, for the chargers that have one."""
    if not charger_ids:
        return {}
    rows = await session.exec(
        select(ChargerKey.charger_id, ChargerKey.kid).where(
            col(ChargerKey.charger_id).in_(charger_ids), col(ChargerKey.retired_at).is_(None)
        )
    )
    return dict(rows.all())


async def pinned_key(session: AsyncSession, charger_id: str) -> ChargerKey | None:
    rows = await session.exec(
        select(ChargerKey).where(
            ChargerKey.charger_id == charger_id, col(ChargerKey.retired_at).is_(None)
        )
    )
    return rows.first()


async def settlement_keys(session: AsyncSession, charger_id: str) -> list[ChargerKey]:
    """Every settlement key the charger has had, oldest first."""
    rows = await session.exec(
        select(ChargerKey)
        .where(ChargerKey.charger_id == charger_id)
        .order_by(col(ChargerKey.created_at))
    )
    return list(rows.all())


async def key_by_kid(session: AsyncSession, charger_id: str, kid: str) -> ChargerKey | None:
    """The settlement key ``kid`` of a charger, retired or not (verification by (iss, kid))."""
    rows = await session.exec(
        select(ChargerKey).where(ChargerKey.charger_id == charger_id, ChargerKey.kid == kid)
    )
    return rows.first()


async def pin_key(
    session: AsyncSession,
    *,
    charger_id: str,
    kid: str,
    jwk: str,
    now: datetime,
    old: ChargerKey | None,
) -> None:
    """Retires ``old`` (if any) and makes ``kid`` the charger's one unretired key: brought back
    if it was retired, else added. The retirement is flushed first, so the one-pinned-key
    index never sees two at once; a concurrent key change that won makes the flush or the
    commit raise IntegrityError (the caller's unit of work runs again)."""
    if old is not None:
        old.retired_at = now
        session.add(old)
        await session.flush()
    previous = await key_by_kid(session, charger_id, kid)
    if previous is not None:
        previous.retired_at = None
        session.add(previous)
    else:
        session.add(ChargerKey(charger_id=charger_id, kid=kid, jwk=jwk, created_at=now))
    await session.flush()


async def mark_all_offline(session: AsyncSession) -> None:
    """On start no socket is open, whatever the last run left behind."""
    await session.exec(update(Charger).where(col(Charger.online)).values(online=False))
    await session.commit()


async def touch(session: AsyncSession, *, charger_id: str, now: datetime) -> None:
    await session.exec(update(Charger).where(col(Charger.id) == charger_id).values(last_seen=now))
    await session.commit()


async def upsert_evse_status(
    session: AsyncSession,
    *,
    charger_id: str,
    evse_id: int,
    connector_id: int,
    status: str,
    error_code: str | None,
    at: datetime,
) -> Evse:
    """Records a connector status unless a newer one is already stored (late delivery)."""
    rows = await session.exec(
        select(Evse).where(
            Evse.charger_id == charger_id,
            Evse.evse_id == evse_id,
            Evse.connector_id == connector_id,
        )
    )
    evse = rows.first()
    if evse is None:
        evse = Evse(charger_id=charger_id, evse_id=evse_id, connector_id=connector_id)
    elif evse.updated_at is not None and evse.updated_at > at:
        return evse
    evse.status = status
    evse.error_code = error_code
    evse.updated_at = at
    session.add(evse)
    try:
        await session.commit()
    except IntegrityError:  # two connections raced to insert it: the other one won
        await session.rollback()
    return evse


# --- store-writer operations (SQLAlchemy Core, in the database thread) ----------------------

CHARGERS = table_of(Charger)
EVSES = table_of(Evse)
# prebuilt with bind parameters (building a statement per call costs more than running it)
_REGISTRATION = Fast(core_select(CHARGERS.c.registration).where(CHARGERS.c.id == bindparam("cid")))
_PASSWORD_HASH = Fast(
    core_select(CHARGERS.c.password_hash).where(CHARGERS.c.id == bindparam("cid"))
)


def registration_of(conn: Connection, charger_id: str) -> str | None:
    """The charger's registration (Accepted, Pending, Rejected), or None when no such charger
    exists (when a connection opens, on a database thread)."""
    found = _REGISTRATION.scalar(conn, {"cid": charger_id})
    return None if found is None else str(found)


_SECURITY_PROFILE = Fast(
    core_select(CHARGERS.c.security_profile).where(CHARGERS.c.id == bindparam("cid"))
)


def security_profile_of(conn: Connection, charger_id: str) -> int | None:
    """The charger's security profile, or None when no such charger exists (for the
    handshake, on a database thread)."""
    row = _SECURITY_PROFILE.first(conn, {"cid": charger_id})
    return None if row is None else int(row[0])


def password_hash_of(conn: Connection, charger_id: str) -> tuple[str | None] | None:
    """``(password_hash,)`` of a registered charger (the hash may be None), or None when no
    such charger exists (for the handshake, on a database thread)."""
    row = _PASSWORD_HASH.first(conn, {"cid": charger_id})
    return None if row is None else (row[0],)


_BOOT = Fast(
    update(CHARGERS)
    .where(CHARGERS.c.id == bindparam("cid"))
    .values(
        vendor=bindparam("vendor"),
        model=bindparam("model"),
        serial_number=bindparam("serial"),
        firmware_version=bindparam("firmware"),
        ocpp_version=bindparam("version"),
        last_boot_at=bindparam("now"),
        last_seen=bindparam("now"),
    )
)
_CHARGER_STATUS = Fast(
    update(CHARGERS)
    .where(CHARGERS.c.id == bindparam("cid"))
    .values(status=bindparam("status"), last_seen=bindparam("now"))
)
_EVSE_WHERE = (
    (EVSES.c.charger_id == bindparam("cid"))
    & (EVSES.c.evse_id == bindparam("evse"))
    & (EVSES.c.connector_id == bindparam("connector"))
)
_EVSE_STATUS = Fast(
    update(EVSES)
    .where(_EVSE_WHERE & (EVSES.c.updated_at.is_(None) | (EVSES.c.updated_at <= bindparam("at"))))
    .values(status=bindparam("status"), error_code=bindparam("error"), updated_at=bindparam("at"))
)
_EVSE_EXISTS = Fast(core_select(EVSES.c.id).where(_EVSE_WHERE))
_EVSE_INSERT = Fast(
    EVSES.insert().values(
        {
            name: bindparam(name)
            for name in (
                "charger_id",
                "evse_id",
                "connector_id",
                "status",
                "error_code",
                "updated_at",
            )
        }
    )
)


def record_boot(
    batch: Batch,
    *,
    charger_id: str,
    version: str,
    vendor: str,
    model: str,
    serial_number: str | None,
    firmware_version: str | None,
    now: datetime,
) -> str | None:
    """Stores a BootNotification; the charger's registration, or None if it was deleted."""
    registration = _REGISTRATION.scalar(batch.conn, {"cid": charger_id})
    if registration is None:
        return None
    _BOOT.later(  # a kept write: the row was just read, nothing waits for its row count
        batch.conn,
        {
            "cid": charger_id,
            "vendor": vendor[:50],
            "model": model[:50],
            "serial": serial_number,
            "firmware": firmware_version,
            "version": version,
            "now": now,
        },
    )
    return str(registration)


def record_charger_status(batch: Batch, *, charger_id: str, status: str, now: datetime) -> None:
    """1.6 connector 0: the charger's own status."""
    _CHARGER_STATUS.later(batch.conn, {"cid": charger_id, "status": status, "now": now})


SYNCS = table_of(ChargerSync)


def _synced_upsert(insert_of: Callable[[Table], Any]) -> Fast:
    stmt = insert_of(SYNCS).values(
        charger_id=bindparam("cid"),
        last_seq=bindparam("seq"),
        updated_at=bindparam("now", type_=UtcDateTime),
    )
    changed = {"last_seq": stmt.excluded.last_seq, "updated_at": stmt.excluded.updated_at}
    return Fast(stmt.on_conflict_do_update(index_elements=[SYNCS.c.charger_id], set_=changed))


_SYNCED = {"sqlite": _synced_upsert(sqlite_insert), "postgresql": _synced_upsert(pg_insert)}
"""The charger's last Synced seq, inserted or replaced in one statement, by dialect name."""


def record_synced(batch: Batch, *, charger_id: str, seq: int, now: datetime) -> None:
    """Stores the last ``Synced`` seq the charger reported (the reaper reads it): one upsert,
    a kept write where the connection pipelines them."""
    conn = batch.conn
    _SYNCED[conn.dialect.name].later(conn, {"cid": charger_id, "seq": seq, "now": now})


_KNOWN = EVSES.alias("known")
_CHANGED = (
    update(EVSES)
    .where(_EVSE_WHERE & (EVSES.c.updated_at.is_(None) | (EVSES.c.updated_at <= bindparam("at"))))
    .values(status=bindparam("status"), error_code=bindparam("error"), updated_at=bindparam("at"))
    .returning(EVSES.c.id)
    .cte("changed")
)
# PostgreSQL: the three steps above in one statement (a data-modifying WITH), so that it can
# be a kept write (csms/store/fast.py); the insert draws an id only when it inserts
_EVSE_UPSERT = Fast(
    insert(EVSES)
    .from_select(
        ["charger_id", "evse_id", "connector_id", "status", "error_code", "updated_at"],
        core_select(
            *(
                bindparam(name, type_=EVSES.c[column].type)
                for name, column in (
                    ("cid", "charger_id"),
                    ("evse", "evse_id"),
                    ("connector", "connector_id"),
                    ("status", "status"),
                    ("error", "error_code"),
                    ("at", "updated_at"),
                )
            )
        ).where(
            ~exists(core_select(_CHANGED.c.id)),
            ~exists(
                core_select(_KNOWN.c.id).where(
                    (_KNOWN.c.charger_id == bindparam("cid"))
                    & (_KNOWN.c.evse_id == bindparam("evse"))
                    & (_KNOWN.c.connector_id == bindparam("connector"))
                )
            ),
        ),
    )
    .add_cte(_CHANGED)
)


def record_evse_status(
    batch: Batch,
    *,
    charger_id: str,
    evse_id: int,
    connector_id: int,
    status: str,
    error_code: str | None,
    at: datetime,
) -> None:
    """Like :func:`upsert_evse_status`: a status older than the stored one is ignored."""
    key = {"cid": charger_id, "evse": evse_id, "connector": connector_id}
    if pipelined(batch.conn):  # one kept write instead of up to three round trips
        _EVSE_UPSERT.later(batch.conn, {**key, "status": status, "error": error_code, "at": at})
        return
    if _EVSE_STATUS.execute(batch.conn, {**key, "status": status, "error": error_code, "at": at}):
        return
    if _EVSE_EXISTS.scalar(batch.conn, key) is not None:
        return  # a newer status is stored (late delivery)
    _EVSE_INSERT.execute(
        batch.conn,
        {
            "charger_id": charger_id,
            "evse_id": evse_id,
            "connector_id": connector_id,
            "status": status,
            "error_code": error_code,
            "updated_at": at,
        },
    )
