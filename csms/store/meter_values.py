"""The ``meter_values`` table: sampled values, queued in the store writer's group and read in
time order.

Rows are dicts of the table's columns; the writer inserts a group's rows with one
``executemany`` just before its commit (:class:`~csms.store.writer.Batch`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store import transactions as stored_transactions
from csms.store.fast import Fast, pipelined
from csms.store.models import MeterValue
from csms.store.writer import Batch, table_of

METER_VALUES = table_of(MeterValue)
_READING = ("timestamp", "measurand", "phase", "unit", "context", "location", "value")
# not a Fast statement: its float column has no result processor there on psycopg
_STORED_BETWEEN = core_select(*(METER_VALUES.c[name] for name in _READING)).where(
    METER_VALUES.c.transaction_pk == bindparam("pk"),
    METER_VALUES.c.timestamp >= bindparam("first"),
    METER_VALUES.c.timestamp <= bindparam("last"),
)
_IN_TIME_ORDER = (
    core_select(
        METER_VALUES.c.timestamp,
        METER_VALUES.c.value,
        METER_VALUES.c.measurand,
        METER_VALUES.c.phase,
        METER_VALUES.c.unit,
        METER_VALUES.c.context,
    )
    .where(METER_VALUES.c.transaction_pk == bindparam("pk"))
    .order_by(METER_VALUES.c.timestamp, METER_VALUES.c.id)
)


def _new_reading(transaction: ColumnElement[Any]) -> Fast:
    """One row into ``meter_values`` for the transaction ``transaction`` (a scalar subquery,
    NULL when there is none) unless that transaction holds the same reading already: the
    lookup, the duplicate check and the insert in one statement."""
    known = METER_VALUES.alias("known")
    binds = {
        c.name: bindparam(c.name, type_=c.type) for c in METER_VALUES.columns if c.name != "id"
    }
    txn = core_select(transaction.label("pk")).subquery("txn")
    same = [known.c.transaction_pk == txn.c.pk]
    same += [  # "=" where the column cannot be NULL: the (transaction, time) index serves it
        known.c[name] == binds[name]
        if not known.c[name].nullable
        else known.c[name].is_not_distinct_from(binds[name])
        for name in _READING
    ]
    values = [txn.c.pk if name == "transaction_pk" else bind for name, bind in binds.items()]
    return Fast(
        METER_VALUES.insert().from_select(
            list(binds),
            core_select(*values)
            .select_from(txn)
            .where(~exists(core_select(known.c.id).where(and_(*same)))),
        )
    )


_OF_TRANSACTION_ID = _new_reading(
    stored_transactions.pk_by_id_query("charger_id", "tid").scalar_subquery()
)
_OPEN_ON_EVSE = _new_reading(
    stored_transactions.open_on_evse_query("charger_id", "open_evse").scalar_subquery()
)


def add(batch: Batch, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queues ``rows`` for the group's one insert of meter values."""
    batch.add_rows(METER_VALUES, rows)


def add_readings(
    batch: Batch,
    *,
    charger_id: str,
    transaction_id: str | None,
    evse_id: int,
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Stores ``rows`` (their ``transaction_pk`` is filled in here) as readings of the
    charger's transaction ``transaction_id`` (1.6) or else of the transaction open on
    ``evse_id`` (2.0.1), without the readings that transaction holds already; rows of no
    transaction are stored as they are.

    Where writes are pipelined (PostgreSQL) each row is one kept write that finds the
    transaction and skips a known reading itself (no round trip of its own); elsewhere the
    transaction is read first and the readings checked with :func:`add_new_readings`."""
    conn = batch.conn
    if pipelined(conn) and (transaction_id is not None or evse_id > 0):
        extra: dict[str, Any]
        if transaction_id is not None:
            statement, extra = _OF_TRANSACTION_ID, {"tid": transaction_id}
        else:
            statement, extra = _OPEN_ON_EVSE, {"open_evse": evse_id}
        for row in rows:
            statement.later(conn, {**row, **extra})
        return
    txn_pk: int | None = None
    if transaction_id is not None:
        txn_pk = stored_transactions.pk_of(
            conn, charger_id=charger_id, transaction_id=transaction_id
        )
    elif evse_id > 0:
        txn_pk = stored_transactions.open_on_evse(conn, charger_id=charger_id, evse_id=evse_id)
    rows = [{**row, "transaction_pk": txn_pk} for row in rows]
    if txn_pk is None:
        add(batch, rows)
    else:
        add_new_readings(batch, transaction_pk=txn_pk, rows=rows)


def add_new_readings(
    batch: Batch, *, transaction_pk: int, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Queues the readings of ``rows`` that the transaction does not hold yet, stored or
    queued in this group (one indexed range read over the rows' instants); a reading is a
    row's instant, measurand, phase, unit, context, location and value."""
    stamps = [row["timestamp"] for row in rows]
    params = {"pk": transaction_pk, "first": min(stamps), "last": max(stamps)}
    known = {tuple(row) for row in batch.conn.execute(_STORED_BETWEEN, params)}
    known.update(
        _reading(row)
        for row in batch.rows.get(METER_VALUES, ())
        if row["transaction_pk"] == transaction_pk
    )
    fresh = []
    for row in rows:
        reading = _reading(row)
        if reading not in known:
            known.add(reading)
            fresh.append(row)
    batch.add_rows(METER_VALUES, fresh)


def _reading(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in _READING)


def in_time_order(
    conn: Connection, *, transaction_pk: int
) -> list[tuple[datetime, float, str, str | None, str | None, str | None]]:
    """The transaction's stored values as ``(timestamp, value, measurand, phase, unit,
    context)``, oldest first."""
    rows = conn.execute(_IN_TIME_ORDER, {"pk": transaction_pk})
    return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


async def samples_of(session: AsyncSession, transaction_pk: int) -> list[MeterValue]:
    """The transaction's stored values, oldest first (the operator's view)."""
    rows = await session.exec(
        select(MeterValue)
        .where(MeterValue.transaction_pk == transaction_pk)
        .order_by(col(MeterValue.timestamp), col(MeterValue.id))
    )
    return list(rows.all())
