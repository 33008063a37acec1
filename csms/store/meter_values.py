"""The ``meter_values`` table: sampled values, queued in the store writer's group and read in
time order.

Rows are dicts of the table's columns; the writer inserts a group's rows with one
``executemany`` just before its commit (:class:`~csms.store.writer.Batch`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

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


def add(batch: Batch, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queues ``rows`` for the group's one insert of meter values."""
    batch.add_rows(METER_VALUES, rows)


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
