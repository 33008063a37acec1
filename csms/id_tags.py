"""The CSMS's own RFID tags as an authorization policy: :class:`LocalTagPolicy`.

It knows the tags of the ``id_tags`` table and calls every other tag ``Invalid``. Order ids
are resolved by the payment side's policy, which falls back to this one for everything else;
the app builds both (:mod:`csms.app`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection

from csms.ports import EXPIRED, INVALID, IdTagDecision
from csms.store.db import Database
from csms.store.fast import Fast
from csms.store.models import IdTag
from csms.store.writer import table_of


class LocalTagPolicy:
    """Known RFID tags from ``id_tags``; everything else (order ids too) is Invalid."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    async def authorize(self, charger_id: str, id_tag: str) -> IdTagDecision:
        row = await self._db.reader.run(tag_row, id_tag)  # one hop, no pooled session
        return self.decide(row)

    def authorize_in(self, conn: Connection, charger_id: str, id_tag: str) -> IdTagDecision:
        """:meth:`authorize` inside a unit of work (on a database thread)."""
        return self.decide(tag_row(conn, id_tag))

    def decide(self, row: TagRow | None) -> IdTagDecision:
        """The decision for a row of :func:`tag_row` (another policy may read the row in a
        unit of its own and ask this one to decide)."""
        if row is None:
            return IdTagDecision(INVALID, known=False)
        status, expiry = row
        if expiry is not None and expiry <= self._clock():
            return IdTagDecision(EXPIRED, expiry)
        return IdTagDecision(status, expiry)


_ID_TAGS = table_of(IdTag)
_TAG = Fast(
    core_select(_ID_TAGS.c.status, _ID_TAGS.c.expiry).where(_ID_TAGS.c.id_tag == bindparam("tag"))
)


TagRow = tuple[str, datetime | None]


def tag_row(conn: Connection, id_tag: str) -> TagRow | None:
    """``(status, expiry)`` of a known RFID tag, or None (on a database thread)."""
    row = _TAG.first(conn, {"tag": id_tag})
    return None if row is None else (str(row[0]), row[1])
