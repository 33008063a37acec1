"""The CSMS's own RFID tags as an authorization policy: :class:`LocalTagPolicy`.

It knows the tags of the ``id_tags`` table and calls every other tag ``Invalid``. Order ids
are resolved by the payment side's policy, which falls back to this one for everything else;
the app builds both (:mod:`csms.app`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Connection

from csms.ports import EXPIRED, INVALID, IdTagDecision
from csms.store.db import Database
from csms.store.id_tags import TagRow, tag_row, tag_row_ahead


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

    def authorize_ahead(self, conn: Connection, id_tag: str) -> None:
        """Queues :meth:`authorize_in`'s read ahead (:data:`~csms.ports.InlineAhead`)."""
        tag_row_ahead(conn, id_tag)

    def decide(self, row: TagRow | None) -> IdTagDecision:
        """The decision for a row of :func:`tag_row` (another policy may read the row in a
        unit of its own and ask this one to decide)."""
        if row is None:
            return IdTagDecision(INVALID, known=False)
        status, expiry = row
        if expiry is not None and expiry <= self._clock():
            return IdTagDecision(EXPIRED, expiry)
        return IdTagDecision(status, expiry)
