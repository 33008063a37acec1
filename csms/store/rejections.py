"""Refused settlements kept as evidence: one row per distinct refusal, its repeats counted.

A refusal is keyed by the token's sha256, its source, the reason and the uploader
(:data:`~csms.store.models_orders.REJECTION_KEY`); storing one again only counts it
(``count``, ``last_at``). What a row holds is decided by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models_orders import REJECTION_KEY, SettlementRejection
from csms.store.writer import table_of

_TABLE = table_of(SettlementRejection)


def _upsert(insert: Any) -> Any:
    statement = insert(_TABLE)
    return statement.on_conflict_do_update(
        index_elements=list(REJECTION_KEY),
        set_={"count": _TABLE.c.count + 1, "last_at": statement.excluded.last_at},
    )


_UPSERT = {"sqlite": _upsert(sqlite_insert), "postgresql": _upsert(pg_insert)}
"""A refusal by dialect name: a new row, or the count and last time of its earlier copy."""


def store_rejection(session: Session, *, values: Mapping[str, Any]) -> None:
    """Adds the refusal, or counts it on the row of the same token, source, reason, driver."""
    connection = session.connection()
    connection.execute(_UPSERT[connection.dialect.name], dict(values))


async def list_rejections(
    session: AsyncSession,
    *,
    order_id: str | None = None,
    charger_id: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[SettlementRejection]:
    """The most recently refused first, filtered by order and charger."""
    query = select(SettlementRejection)
    if order_id is not None:
        query = query.where(SettlementRejection.order_id == order_id)
    if charger_id is not None:
        query = query.where(SettlementRejection.charger_id == charger_id)
    query = query.order_by(
        col(SettlementRejection.last_at).desc(), col(SettlementRejection.id).desc()
    )
    rows = await session.exec(query.offset(offset).limit(limit))
    return list(rows.all())
