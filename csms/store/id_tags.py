"""Database functions for the locally known RFID tags (keyword-only; async for the operator
API, a plain function of a connection for the authorization hot path)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.fast import Fast
from csms.store.models import IdTag
from csms.store.writer import table_of

TagRow = tuple[str, datetime | None]
"""``(status, expiry)`` of a known tag."""

_ID_TAGS = table_of(IdTag)
_TAG = Fast(
    core_select(_ID_TAGS.c.status, _ID_TAGS.c.expiry).where(_ID_TAGS.c.id_tag == bindparam("tag"))
)


def tag_row_ahead(conn: Connection, id_tag: str) -> None:
    """Queues :func:`tag_row`'s read with the unit's next round trip (``Fast.ahead``)."""
    _TAG.ahead(conn, {"tag": id_tag})


def tag_row(conn: Connection, id_tag: str) -> TagRow | None:
    """``(status, expiry)`` of a known RFID tag, or None (on a database thread)."""
    row = _TAG.first(conn, {"tag": id_tag})
    return None if row is None else (str(row[0]), row[1])


async def list_id_tags(
    session: AsyncSession,
    *,
    status: str | None = None,
    prefix: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[IdTag]:
    """Tags ordered by id; of one ``status``, or starting with ``prefix``, when given."""
    query = select(IdTag)
    if status is not None:
        query = query.where(IdTag.status == status)
    if prefix is not None:
        query = query.where(col(IdTag.id_tag).startswith(prefix, autoescape=True))
    query = query.order_by(col(IdTag.id_tag)).offset(offset).limit(limit)
    return list((await session.exec(query)).all())


async def put_id_tag(
    session: AsyncSession, *, id_tag: str, status: str, expiry: datetime | None, now: datetime
) -> IdTag:
    """Creates the tag (``created_at`` = ``now``) or changes its status and expiry; commits."""
    tag = await session.get(IdTag, id_tag) or IdTag(id_tag=id_tag, created_at=now)
    tag.status = status
    tag.expiry = expiry
    session.add(tag)
    await session.commit()
    return tag


async def delete_id_tag(session: AsyncSession, *, id_tag: str) -> bool:
    """Deletes the tag and commits; False when there is no such tag."""
    tag = await session.get(IdTag, id_tag)
    if tag is None:
        return False
    await session.delete(tag)
    await session.commit()
    return True
