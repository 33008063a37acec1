"""Orders and their flags in the database: the order's row, its conditional state steps, the
operator's flags, and the reads of the reaper, the limit watch and the order pages.

The order's unit of work and the settlement's run the prebuilt statements here (built once,
with bind parameters: see :mod:`csms.store.fast`); the pages and the background passes use
ORM queries on an async session. A conditional step (``... WHERE status = :old_status``)
returns whether it matched: the caller decides what a lost race means. Nothing here commits
unless it says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col
from sqlmodel import select as orm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.db import Database
from csms.store.fast import Fast
from csms.store.models import Charger, ChargerSync, Evse, IdTag, MeterValue, Transaction
from csms.store.models_orders import Order, OrderFlag
from csms.store.rows import loaded
from csms.store.types import UtcDateTime, utcnow
from csms.store.units_of_work import matched_one
from csms.store.writer import table_of

ORDERS = table_of(Order)
FLAGS = table_of(OrderFlag)
_CHARGERS = table_of(Charger)
_EVSES = table_of(Evse)
_ID_TAGS = table_of(IdTag)

_CHARGER_CHECK = Fast(
    select(
        _CHARGERS.c.registration,
        select(_EVSES.c.id)
        .where(
            _EVSES.c.charger_id == bindparam("charger_id"),
            _EVSES.c.evse_id == bindparam("evse_id"),
        )
        .limit(1)
        .scalar_subquery(),
    ).where(_CHARGERS.c.id == bindparam("charger_id"))
)
_INSERT_ORDER = Fast(
    insert(ORDERS).values({c.name: bindparam(c.name, type_=c.type) for c in ORDERS.columns})
)
_ORDER_BY_ID = Fast(select(ORDERS).where(ORDERS.c.id == bindparam("order_id")))
_ORDER_NAMES = tuple(ORDERS.columns.keys())
_ORDER_BY_KEY = Fast(
    select(ORDERS).where(
        ORDERS.c.user_id == bindparam("user_id"), ORDERS.c.idempotency_key == bindparam("key")
    )
)
_FLAGGED = Fast(select(FLAGS.c.id).where(FLAGS.c.order_id == bindparam("order_id")).limit(1))
_FLAG_OF_ORDER = select(FLAGS.c.id).where(
    FLAGS.c.order_id == bindparam("order_id"), FLAGS.c.kind == bindparam("kind")
)
_INSERT_FLAG: Insert = insert(FLAGS)
_ORDER_PAID = Fast(
    update(ORDERS)
    .where(ORDERS.c.id == bindparam("order_id"), ORDERS.c.status == bindparam("old_status"))
    .values(
        status="paid",
        paid_at=bindparam("now", type_=UtcDateTime),
        updated_at=bindparam("now", type_=UtcDateTime),
        hold_released_at=func.coalesce(
            ORDERS.c.hold_released_at, bindparam("now", type_=UtcDateTime)
        ),
    )
)
_AUTHORIZATION = Fast(
    select(ORDERS.c.charger_id, ORDERS.c.status, ORDERS.c.expires_at).where(
        ORDERS.c.id == bindparam("order_id")
    )
)
_START = Fast(
    update(ORDERS)
    .where(
        ORDERS.c.id == bindparam("order_id"),
        ORDERS.c.charger_id == bindparam("charger_id"),
        ORDERS.c.status == "created",
    )
    .values(
        status="started",
        started_at=func.coalesce(ORDERS.c.started_at, bindparam("at", type_=UtcDateTime)),
        updated_at=bindparam("now", type_=UtcDateTime),
    )
)
_START_STATE = Fast(
    select(ORDERS.c.status, ORDERS.c.started_at).where(ORDERS.c.id == bindparam("order_id"))
)
_BY_ORDER_ID = ORDERS.c.id == bindparam("tag")
_BY_TAG = _ID_TAGS.c.id_tag == bindparam("tag")
# the order a tag names and the local RFID tag of that name: one statement, a row either way
_ORDER_AND_TAG = Fast(
    select(
        select(ORDERS.c.charger_id).where(_BY_ORDER_ID).scalar_subquery(),
        select(ORDERS.c.status).where(_BY_ORDER_ID).scalar_subquery(),
        select(ORDERS.c.expires_at).where(_BY_ORDER_ID).scalar_subquery(),
        select(_ID_TAGS.c.status).where(_BY_TAG).scalar_subquery(),
        select(_ID_TAGS.c.expiry).where(_BY_TAG).scalar_subquery(),
    )
)


# --- inside a unit of work (synchronous) -----------------------------------------------------


def charger_check(
    session: Session, *, charger_id: str, evse_id: int | None
) -> tuple[str, int | None] | None:
    """(registration, an EVSE row id or None) of a charger; None for an unknown charger. One
    statement, no ORM rows."""
    found = _CHARGER_CHECK.first(
        session.connection(), {"charger_id": charger_id, "evse_id": evse_id}
    )
    return None if found is None else (str(found[0]), found[1])


def charger_check_ahead(session: Session, *, charger_id: str, evse_id: int | None) -> None:
    """Queues :func:`charger_check`'s read with the unit's next round trip (see
    :meth:`~csms.store.fast.Fast.ahead`)."""
    _CHARGER_CHECK.ahead(session.connection(), {"charger_id": charger_id, "evse_id": evse_id})


def insert_order(session: Session, *, values: Mapping[str, Any]) -> Order:
    """Writes the order (every column given: :func:`~csms.store.rows.with_defaults`) as a
    kept write (sent with the unit's next round trip where writes are pipelined) and hands
    it out as loaded (no session, no flush)."""
    _INSERT_ORDER.later(session.connection(), values)
    return loaded(Order, values)


def order_row(session: Session, *, order_id: str) -> Order | None:
    """The order as stored now, loaded outside the session."""
    return _loaded_order(_ORDER_BY_ID.first(session.connection(), {"order_id": order_id}))


def order_of_key(session: Session, *, user_id: int, key: str) -> Order | None:
    """The driver's order placed with the Idempotency-Key ``key`` (at most one: the unique
    index on ``(user_id, idempotency_key)``), loaded outside the session."""
    params = {"user_id": user_id, "key": key}
    return _loaded_order(_ORDER_BY_KEY.first(session.connection(), params))


def _loaded_order(row: tuple[Any, ...] | None) -> Order | None:
    return None if row is None else loaded(Order, dict(zip(_ORDER_NAMES, row, strict=True)))


def start_created(
    conn: Connection, *, order_id: str, charger_id: str, at: datetime, now: datetime
) -> bool:
    """created -> started for the order of ``charger_id`` (``started_at`` kept if set, else
    ``at``), on a connection inside its transaction; whether it matched (one statement)."""
    params = {"order_id": order_id, "charger_id": charger_id, "at": at, "now": now}
    return _START.execute(conn, params) == 1


def start_state(conn: Connection, *, order_id: str) -> tuple[str, datetime | None] | None:
    """(status, started_at) of the order, or None when there is none."""
    row = _START_STATE.first(conn, {"order_id": order_id})
    return None if row is None else (str(row[0]), row[1])


@cache
def _state_update(names: tuple[str, ...]) -> Fast:
    """A conditional step of an order: ``status`` and ``updated_at`` and the columns
    ``names`` (each bound by its own name) where the status read is still current."""
    when = {name: bindparam(name, type_=ORDERS.c[name].type) for name in names}
    return Fast(
        update(ORDERS)
        .where(ORDERS.c.id == bindparam("order_id"), ORDERS.c.status == bindparam("old_status"))
        .values(
            status=bindparam("new_status"),
            updated_at=bindparam("now", type_=UtcDateTime),
            **when,
        )
    )


def step_order(
    session: Session,
    *,
    order_id: str,
    old_status: str,
    new_status: str,
    now: datetime,
    values: Mapping[str, Any],
) -> bool:
    """Sets ``status``, ``updated_at`` and ``values`` where the status is still
    ``old_status`` (a prebuilt statement per set of columns); whether it matched."""
    statement, params = _step(order_id, old_status, new_status, now, values)
    return statement.execute(session.connection(), params) == 1


def step_order_checked(
    session: Session,
    *,
    order_id: str,
    old_status: str,
    new_status: str,
    now: datetime,
    values: Mapping[str, Any],
) -> None:
    """:func:`step_order` as a kept write, sent with the unit's next round trip;
    :class:`~csms.store.units_of_work.Conflict` there when the status was no longer
    ``old_status``."""
    statement, params = _step(order_id, old_status, new_status, now, values)
    check = matched_one(f"order {order_id} changed under us")
    statement.later(session.connection(), params, check=check)


def _step(
    order_id: str, old_status: str, new_status: str, now: datetime, values: Mapping[str, Any]
) -> tuple[Fast, dict[str, Any]]:
    """The statement of an order's step (one per set of columns) and its parameters."""
    params = {"order_id": order_id, "old_status": old_status, "new_status": new_status}
    return _state_update(tuple(sorted(values))), {**params, "now": now, **values}


def mark_paid(session: Session, *, order_id: str, old_status: str, now: datetime) -> None:
    """``paid`` (and the hold released, if it was not yet) where the status is still
    ``old_status``, as a kept write sent with the unit's next round trip;
    :class:`~csms.store.units_of_work.Conflict` there when it matched no row."""
    params = {"order_id": order_id, "old_status": old_status, "now": now}
    check = matched_one(f"order {order_id} changed under the capture")
    _ORDER_PAID.later(session.connection(), params, check=check)


def add_flag(session: Session, *, order_id: str, kind: str, detail: str = "") -> None:
    """Flags the order for the operator (once per kind; a concurrent duplicate makes the unit
    of work retry, and the retry finds the flag)."""
    connection, params = session.connection(), {"order_id": order_id, "kind": kind}
    if connection.execute(_FLAG_OF_ORDER, params).first() is None:
        values = {
            "order_id": order_id,
            "kind": kind,
            "detail": detail[:500],
            "created_at": utcnow(),
        }
        connection.execute(_INSERT_FLAG, values)


def authorization_ahead(conn: Connection, *, id_tag: str, with_tag: bool) -> None:
    """Queues the read of :func:`order_and_tag_rows` (``with_tag``) or else of
    :func:`authorization_row` with the unit's next round trip (``Fast.ahead``)."""
    if with_tag:
        _ORDER_AND_TAG.ahead(conn, {"tag": id_tag})
    else:
        _AUTHORIZATION.ahead(conn, {"order_id": id_tag})


def authorization_row(conn: Connection, *, order_id: str) -> tuple[str, str, datetime] | None:
    """(charger_id, status, expires_at) of the order, on a plain connection (the reader
    thread's, or the caller's unit of work)."""
    row = _AUTHORIZATION.first(conn, {"order_id": order_id})
    return None if row is None else (str(row[0]), str(row[1]), row[2])


def order_and_tag_rows(
    conn: Connection, *, id_tag: str
) -> tuple[tuple[str, str, datetime] | None, tuple[str, datetime | None] | None]:
    """(charger_id, status, expires_at) of the order ``id_tag`` names and (status, expiry) of
    the local RFID tag ``id_tag``, each None when there is none: one read for both."""
    row = _ORDER_AND_TAG.first(conn, {"tag": id_tag})
    assert row is not None  # a SELECT of scalar subqueries has one row
    charger_id, status, expires_at, tag_status, expiry = row
    order = None if charger_id is None else (str(charger_id), str(status), expires_at)
    tag = None if tag_status is None else (str(tag_status), expiry)
    return order, tag


# --- async: the pages, the operator's steps, the background passes ---------------------------


async def get_order(session: AsyncSession, *, order_id: str) -> Order | None:
    return await session.get(Order, order_id)


async def list_orders(
    session: AsyncSession,
    *,
    user_id: int | None = None,
    status: str | None = None,
    charger_id: str | None = None,
    flagged: bool | None = None,
    offset: int = 0,
    limit: int = 50,
) -> list[Order]:
    """Newest first, filtered by owner, status, charger and whether the order has a flag
    (in the query, so a page of flagged orders is full even when few orders are flagged)."""
    query = orm_select(Order)
    if user_id is not None:
        query = query.where(Order.user_id == user_id)
    if status is not None:
        query = query.where(Order.status == status)
    if charger_id is not None:
        query = query.where(Order.charger_id == charger_id)
    if flagged is not None:
        has_flag = exists().where(col(OrderFlag.order_id) == col(Order.id))
        query = query.where(has_flag if flagged else ~has_flag)
    query = query.order_by(col(Order.created_at).desc(), col(Order.id)).offset(offset).limit(limit)
    return list((await session.exec(query)).all())


def flagged_at_commit(session: Session, *, order_id: str) -> Callable[[], bool]:
    """Whether the order has a flag, read as the unit's last statement: sent with its COMMIT
    where writes are pipelined (:meth:`~csms.store.fast.Fast.at_commit`); the answer once
    committed."""
    rows = _FLAGGED.at_commit(session.connection(), {"order_id": order_id})
    return lambda: bool(rows())


async def flags_of(session: AsyncSession, *, order_id: str) -> list[OrderFlag]:
    rows = await session.exec(
        orm_select(OrderFlag).where(OrderFlag.order_id == order_id).order_by(col(OrderFlag.id))
    )
    return list(rows.all())


async def claim_flag(db: Database, *, order_id: str, kind: str, detail: str) -> bool:
    """Writes the flag in a transaction of its own; False when the order had it already."""
    async with db.session() as session:
        session.add(OrderFlag(order_id=order_id, kind=kind, detail=detail))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return False
    return True


async def set_remote_started(session: AsyncSession, *, order_id: str, at: datetime) -> None:
    """Records when the CSMS asked the charger to start the order, and commits (before the
    request goes out: from then on the CSMS watches the order's limits)."""
    await session.exec(update(Order).where(col(Order.id) == order_id).values(remote_started_at=at))
    await session.commit()


async def expired_unused(
    session: AsyncSession,
    *,
    status: str,
    expired_before: datetime,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[tuple[Order, ChargerSync | None]]:
    """Orders in ``status`` whose token expired before ``expired_before``, with their
    charger's last ``Synced``, by expiry then id: a keyset page after ``after``."""
    query = (
        orm_select(Order, ChargerSync)
        .join(ChargerSync, col(ChargerSync.charger_id) == col(Order.charger_id), isouter=True)
        .where(Order.status == status, col(Order.expires_at) < expired_before)
        .order_by(col(Order.expires_at), col(Order.id))
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            or_(
                col(Order.expires_at) > after[0],
                and_(col(Order.expires_at) == after[0], col(Order.id) > after[1]),
            )
        )
    return list((await session.exec(query)).all())


async def flagged_among(session: AsyncSession, *, order_ids: Sequence[str], kind: str) -> set[str]:
    """Those of ``order_ids`` that carry a flag of ``kind``."""
    rows = await session.exec(
        orm_select(OrderFlag.order_id).where(
            col(OrderFlag.order_id).in_(order_ids), OrderFlag.kind == kind
        )
    )
    return set(rows.all())


async def remotely_started(
    session: AsyncSession, *, status: str, without_flag: str, limit: int
) -> list[tuple[Order, Transaction]]:
    """Orders in ``status`` that the CSMS started remotely, with their open transaction at
    the order's charger, unless flagged ``without_flag``; by order id."""
    rows = await session.exec(
        orm_select(Order, Transaction)
        .join(Transaction, col(Transaction.id_tag) == col(Order.id))
        .where(
            col(Order.remote_started_at).is_not(None),
            Order.status == status,
            col(Transaction.charger_id) == col(Order.charger_id),
            Transaction.state == "Started",
            ~exists().where(
                col(OrderFlag.order_id) == col(Order.id), col(OrderFlag.kind) == without_flag
            ),
        )
        .order_by(col(Order.id))
        .limit(limit)
    )
    return list(rows.all())


REGISTER = "Energy.Active.Import.Register"


async def open_transaction_of(
    session: AsyncSession, *, order_id: str, charger_id: str
) -> Transaction | None:
    """The order's running transaction at its charger (the newest one when a charger reported
    more than one), or None."""
    rows = await session.exec(
        orm_select(Transaction)
        .where(
            Transaction.id_tag == order_id,
            Transaction.charger_id == charger_id,
            Transaction.state == "Started",
        )
        .order_by(col(Transaction.started_at).desc(), col(Transaction.id).desc())
        .limit(1)
    )
    return rows.first()


async def register_reading(
    session: AsyncSession, *, transaction_pk: int, last: bool = True
) -> MeterValue | None:
    """The transaction's latest (``last``) or earliest sample of the whole energy register:
    per-phase samples are left out, and so are samples taken at the EV's side."""
    when, row = col(MeterValue.timestamp), col(MeterValue.id)
    rows = await session.exec(
        orm_select(MeterValue)
        .where(
            MeterValue.transaction_pk == transaction_pk,
            MeterValue.measurand == REGISTER,
            col(MeterValue.phase).is_(None),
            or_(col(MeterValue.location).is_(None), col(MeterValue.location) != "EV"),
        )
        .order_by(*((when.desc(), row.desc()) if last else (when, row)))
        .limit(1)
    )
    return rows.first()
