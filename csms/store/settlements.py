"""Session records (one per charging session of an order) and the settlement inbox (every
received settlement token, once).

The settlement's unit of work runs the prebuilt statements here (see :mod:`csms.store.fast`)
and gets loaded model objects back (:func:`~csms.store.rows.loaded`); the pages read through
the async session. A conditional update (``... WHERE txn IS NULL``) returns whether it
matched: the caller decides what a lost race means.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col
from sqlmodel import select as orm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.fast import Fast
from csms.store.models import ChargerKey, SettlementInbox, Transaction
from csms.store.models_orders import Order, SettlementRecord
from csms.store.rows import columns, insert_returning_id, loaded, split, with_defaults
from csms.store.types import UtcDateTime
from csms.store.writer import table_of

RECORDS = table_of(SettlementRecord)
_ORDERS = table_of(Order)
_KEYS = table_of(ChargerKey)
_INBOX = table_of(SettlementInbox)

_COPY = (RECORDS.c.order_id == bindparam("order_id")) | (
    (RECORDS.c.charger_id == bindparam("iss")) & (RECORDS.c.txn == bindparam("txn"))
)
_VERIFY_ROWS = Fast(
    select(_KEYS.c.jwk, *columns(_ORDERS, RECORDS))
    .select_from(_KEYS)
    .outerjoin(_ORDERS, _ORDERS.c.id == bindparam("order_id"))
    .outerjoin(RECORDS, _COPY)
    .where(_KEYS.c.charger_id == bindparam("iss"), _KEYS.c.kid == bindparam("kid"))
)
"""The charger's key by (iss, kid), then the columns of the order the token claims (all None
if unknown) and of one record of the copy (all None if there is none): one row per record, at
least one if the key exists."""

_RECORDS_OF_COPY = Fast(
    select(RECORDS).where(
        (RECORDS.c.order_id == bindparam("order_id"))
        | ((RECORDS.c.charger_id == bindparam("charger_id")) & (RECORDS.c.txn == bindparam("txn")))
    )
)
_RECORD_OF_OCPP = Fast(select(RECORDS).where(RECORDS.c.ocpp_transaction_pk == bindparam("pk")))
_RECORDS_OF_ORDER = Fast(
    select(RECORDS)
    .where(RECORDS.c.order_id == bindparam("order_id"))
    .order_by(RECORDS.c.session_no)
)
_TRANSACTIONS = table_of(Transaction)
_OCPP_IDS = Fast(
    select(_TRANSACTIONS.c.ocpp_version, _TRANSACTIONS.c.transaction_id).where(
        _TRANSACTIONS.c.id == bindparam("pk")
    )
)
_RECORD_CHARGE = Fast(
    update(RECORDS)
    .where(RECORDS.c.id == bindparam("record_id"))
    .values(
        charge_amount=bindparam("amount"),
        disagreement=bindparam("disagree"),
        updated_at=bindparam("now", type_=UtcDateTime),
    )
)
_INSERT_RECORD = insert_returning_id(RECORDS)
_INBOX_NAMES = ("charger_id", "token", "token_sha256", "source", "received_at")
_INSERT_INBOX = {
    dialect: Fast(
        insert_of(_INBOX)
        .values({name: bindparam(name, type_=_INBOX.c[name].type) for name in _INBOX_NAMES})
        .on_conflict_do_nothing()
        .inline()  # no implicit RETURNING id: a kept write, nothing reads it
    )
    for dialect, insert_of in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}
"""A token into the inbox, by dialect name; a token stored before inserts nothing."""
_RECORD_NAMES = tuple(RECORDS.columns.keys())


@cache
def _complete(names: tuple[str, ...], unset: str) -> Fast:
    """Writes the columns ``names`` of a record where its column ``unset`` is still NULL,
    returning the record as it is stored now (no row: another copy completed it first)."""
    return Fast(
        update(RECORDS)
        .where(RECORDS.c.id == bindparam("record_id"), RECORDS.c[unset].is_(None))
        .values({name: bindparam(f"v_{name}", type_=RECORDS.c[name].type) for name in names})
        .returning(*RECORDS.c)
    )


class OcppIds(NamedTuple):
    """The OCPP version and transaction id of a transaction row (how it matches a record)."""

    ocpp_version: str
    transaction_id: str


def _record(row: tuple[Any, ...]) -> SettlementRecord:
    return loaded(SettlementRecord, dict(zip(_RECORD_NAMES, row, strict=True)))


# --- inside a unit of work (synchronous) -----------------------------------------------------


def verify_rows(
    session: Session, *, iss: str, kid: str, order_id: str, txn: str
) -> tuple[str, Order | None, list[SettlementRecord]] | None:
    """In one statement: the charger's key (JWK text) by (iss, kid), the order ``order_id``
    (None if unknown), and the records of the copy (every record of that order, and the
    record of (iss, txn) whatever its order). None when the charger has no such key."""
    params = {"iss": iss, "kid": kid, "order_id": order_id, "txn": txn}
    rows = _VERIFY_ROWS.all(session.connection(), params)
    if not rows:
        return None
    jwk, (values, _) = rows[0][0], split(rows[0][1:], _ORDERS, RECORDS)
    order = None if values["id"] is None else loaded(Order, values)
    records = [
        loaded(SettlementRecord, found)
        for _, found in (split(row[1:], _ORDERS, RECORDS) for row in rows)
        if found["id"] is not None
    ]
    return str(jwk), order, records


def records_of_copy(
    session: Session, *, order_id: str, charger_id: str, txn: str
) -> list[SettlementRecord]:
    """Every record of the order, and the record of this (charger, txn) whatever its order."""
    params = {"order_id": order_id, "charger_id": charger_id, "txn": txn}
    return [_record(r) for r in _RECORDS_OF_COPY.all(session.connection(), params)]


def record_of_transaction(session: Session, *, transaction_pk: int) -> SettlementRecord | None:
    """The record an OCPP transaction (by row id) completes, if any."""
    row = _RECORD_OF_OCPP.first(session.connection(), {"pk": transaction_pk})
    return None if row is None else _record(row)


def records_of_order(session: Session, *, order_id: str) -> list[SettlementRecord]:
    """Every record of the order, by session number: in one read, the records a copy may
    complete and the number a new one takes (numbered from a later read, a record committed
    in between would be missed and the same session stored twice; numbered from this one,
    it breaks the unique (order, session number) and the unit runs again)."""
    rows = _RECORDS_OF_ORDER.all(session.connection(), {"order_id": order_id})
    return [_record(r) for r in rows]


def end_reads_ahead(session: Session, *, transaction_pk: int, order_id: str) -> None:
    """Queues the reads of an OCPP transaction's end (:func:`record_of_transaction`,
    :func:`transaction_of`, :func:`records_of_order`) with the unit's next round trip
    (:meth:`~csms.store.fast.Fast.ahead`): the unit reads its order first, and then these
    without a round trip each."""
    conn = session.connection()
    _RECORD_OF_OCPP.ahead(conn, {"pk": transaction_pk})
    _OCPP_IDS.ahead(conn, {"pk": transaction_pk})
    _RECORDS_OF_ORDER.ahead(conn, {"order_id": order_id})


def set_charge(
    session: Session, *, record_id: int | None, amount: int, disagree: bool, now: datetime
) -> None:
    """What a session record charges, and whether its two sources disagree (a kept write:
    the record is the unit's own, nothing waits for its row count)."""
    params = {"record_id": record_id, "amount": amount, "disagree": disagree, "now": now}
    _RECORD_CHARGE.later(session.connection(), params)


def complete_signed(
    session: Session, *, record_id: int | None, values: Mapping[str, Any]
) -> SettlementRecord | None:
    """Writes the signed settlement's columns into an OCPP-only record, where it has none
    yet: the record as stored now, or None when another copy completed it first."""
    return _completed(session, record_id, values, unset="txn")


def complete_transaction(
    session: Session, *, record_id: int | None, values: Mapping[str, Any]
) -> SettlementRecord | None:
    """Writes the OCPP transaction's columns into a record, where it has none yet: the record
    as stored now, or None when another transaction completed it first."""
    return _completed(session, record_id, values, unset="ocpp_transaction_pk")


def _completed(
    session: Session, record_id: int | None, values: Mapping[str, Any], *, unset: str
) -> SettlementRecord | None:
    statement = _complete(tuple(values), unset)
    params = {f"v_{name}": value for name, value in values.items()}
    params["record_id"] = record_id
    row = statement.first(session.connection(), params)
    return None if row is None else _record(row)


def insert_record(session: Session, *, values: Mapping[str, Any]) -> SettlementRecord:
    """Inserts a session record with a prebuilt Core ``INSERT .. RETURNING id`` and returns it
    loaded (outside the session). The unique (charger, txn) fails here as at a flush."""
    full = with_defaults(SettlementRecord, values)
    full.pop("id", None)
    full["id"] = _INSERT_RECORD.scalar(session.connection(), full)
    return loaded(SettlementRecord, full)


def transaction_of(session: Session, *, transaction_pk: int) -> OcppIds | None:
    """The OCPP version and transaction id of a row id (they tell how it matches a record)."""
    row = _OCPP_IDS.first(session.connection(), {"pk": transaction_pk})
    return None if row is None else OcppIds(str(row[0]), str(row[1]))


def add_to_inbox(
    session: Session, *, charger_id: str, token: str, token_sha256: str, source: str, now: datetime
) -> None:
    """Keeps a received settlement token in the inbox, once per token (by its sha256; a
    token kept before inserts nothing). Every way a settlement arrives (upload, OCPP) is kept
    here; a kept write where the connection pipelines them (nobody reads its row count)."""
    values = {
        "charger_id": charger_id[:48],
        "token": token[:8000],
        "token_sha256": token_sha256,
        "source": source,
        "received_at": now,
    }
    connection = session.connection()
    _INSERT_INBOX[connection.dialect.name].later(connection, values)


# --- async: the pages ------------------------------------------------------------------------


async def records_of(session: AsyncSession, *, order_id: str) -> list[SettlementRecord]:
    """The order's session records, by session number."""
    rows = await session.exec(
        orm_select(SettlementRecord)
        .where(SettlementRecord.order_id == order_id)
        .order_by(col(SettlementRecord.session_no))
    )
    return list(rows.all())


async def get_record(session: AsyncSession, *, record_id: int) -> SettlementRecord | None:
    return await session.get(SettlementRecord, record_id)


async def list_records(
    session: AsyncSession,
    *,
    order_id: str | None = None,
    charger_id: str | None = None,
    disagreement: bool | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[SettlementRecord]:
    """Newest first, filtered by order, charger and disagreement."""
    query = orm_select(SettlementRecord)
    if order_id is not None:
        query = query.where(SettlementRecord.order_id == order_id)
    if charger_id is not None:
        query = query.where(SettlementRecord.charger_id == charger_id)
    if disagreement is not None:
        query = query.where(SettlementRecord.disagreement == disagreement)
    query = query.order_by(col(SettlementRecord.id).desc()).offset(offset).limit(limit)
    return list((await session.exec(query)).all())


async def records_of_user(
    session: AsyncSession, *, user_id: int | None, offset: int = 0, limit: int = 50
) -> list[tuple[SettlementRecord, Order]]:
    """The records of the driver's orders with their order, newest first."""
    rows = await session.exec(
        orm_select(SettlementRecord, Order)
        .join(Order, col(Order.id) == col(SettlementRecord.order_id))
        .where(Order.user_id == user_id)
        .order_by(col(SettlementRecord.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows.all())
