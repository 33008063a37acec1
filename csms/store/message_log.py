"""The support log of OCPP frames: written in batches by one task, bounded twice.

Frames are handed over with :meth:`MessageLogWriter.record`, which never blocks and never
grows memory without bound: the queue holds at most ``queue_size`` frames and drops (and
counts) the rest, because this log is for support and must not slow charging down. The table
keeps about ``limit`` rows per charger (at most ~10 % more between prunes); older rows are
pruned periodically. The writes run in
the background database thread (``Database.background``), in short transactions, so neither
the event loop nor the hot paths' database thread pays for them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import bindparam, delete, insert
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.db import Database
from csms.store.models import MessageLog
from csms.store.writer import table_of

LOG = logging.getLogger("csms.store")
FRAME_MAX_CHARS = 4000
MESSAGE_LOG = table_of(MessageLog)
PRUNE_CHUNK = 100  # chargers pruned per transaction
# rows per insert: a unit of the database thread short enough (a few ms) that the OCPP writes
# queued behind it on SQLite barely notice (a whole batch at once held them for tens of ms)
INSERT_CHUNK = 200


class MessageLogWriter:
    """Batches frames into ``message_log``; run :meth:`run` as an owned task.

    Rows are plain dicts inserted with one Core ``executemany`` per batch (no ORM objects per
    frame), at most one batch per ``gather_s``. Pruning costs a query per charger, so it runs
    at most every ``prune_every_s`` for the chargers written since, and on :meth:`flush`.
    """

    def __init__(
        self,
        db: Database,
        *,
        limit: int,
        clock: Callable[[], datetime],
        queue_size: int = 10_000,
        batch_size: int = 2_000,
        gather_s: float = 0.5,
        prune_every_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._limit = limit
        self._clock = clock
        self._queue: asyncio.Queue[dict[str, object]] = asyncio.Queue(queue_size)
        self._batch_size = batch_size
        self._gather_s = gather_s
        self._prune_every_s = prune_every_s
        self._monotonic = monotonic
        self._last_prune = monotonic()
        self._grown: Counter[str] = Counter()  # rows written per charger since its last prune
        self._writing = asyncio.Lock()
        self.dropped = 0

    def record(self, charger_id: str, direction: str, frame: str) -> None:
        if self._limit <= 0:
            return
        row = {
            "charger_id": charger_id,
            "direction": direction,
            "frame": frame[:FRAME_MAX_CHARS],
            "at": self._clock(),
        }
        try:
            self._queue.put_nowait(row)
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # let frames gather: one insert per ~half second, not one per frame, so the log
            # takes a few units of the database thread per second whatever the traffic
            await asyncio.sleep(self._gather_s)
            async with self._writing:
                while len(batch) < self._batch_size and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                due = self._monotonic() - self._last_prune >= self._prune_every_s
                try:
                    await self._write(batch, prune=due)
                except Exception:
                    LOG.exception("message log: lost a batch of %d frames", len(batch))

    async def flush(self) -> None:
        """Writes whatever is queued now and prunes (used on shutdown, by the API, by tests);
        waits for a batch the task is writing, so what was recorded before is readable."""
        async with self._writing:
            batch = []
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write(batch, prune=True, everyone=True)

    async def _write(
        self, batch: list[dict[str, object]], *, prune: bool, everyone: bool = False
    ) -> None:
        self._grown.update(str(row["charger_id"]) for row in batch)
        for start in range(0, len(batch), INSERT_CHUNK):
            await self._db.background.run(_insert, batch[start : start + INSERT_CHUNK])
        # the periodic prune skips chargers that grew by less than a tenth of the limit since
        # their last one (the table keeps at most ~10 % more than the limit): pruning every
        # charger at every pass puts a large fleet's worth of work in front of the OCPP writes
        slack = 1 if everyone else max(1, self._limit // 10)
        chargers = sorted(c for c, rows in self._grown.items() if rows >= slack) if prune else []
        if chargers:
            for start in range(0, len(chargers), PRUNE_CHUNK):  # short transactions
                await self._db.background.run(
                    _prune, chargers[start : start + PRUNE_CHUNK], self._limit
                )
            for charger_id in chargers:
                del self._grown[charger_id]
        if prune:
            self._last_prune = self._monotonic()


# --- in the background database thread ------------------------------------------------------

_NEWEST_BEYOND = (
    core_select(MESSAGE_LOG.c.id)
    .where(MESSAGE_LOG.c.charger_id == bindparam("cid"))
    .order_by(MESSAGE_LOG.c.id.desc())
    .offset(bindparam("keep"))
    .limit(1)
)
_DELETE_UP_TO = delete(MESSAGE_LOG).where(
    MESSAGE_LOG.c.charger_id == bindparam("cid"), MESSAGE_LOG.c.id <= bindparam("upto")
)


def _insert(conn: Connection, batch: list[dict[str, object]]) -> None:
    conn.execute(insert(MESSAGE_LOG), batch)


def _prune(conn: Connection, chargers: list[str], limit: int) -> None:
    for charger_id in chargers:
        oldest_kept = conn.scalar(_NEWEST_BEYOND, {"cid": charger_id, "keep": limit})
        if oldest_kept is not None:
            conn.execute(_DELETE_UP_TO, {"cid": charger_id, "upto": oldest_kept})


async def recent_frames(
    session: AsyncSession, charger_id: str, limit: int = 100
) -> list[MessageLog]:
    """The newest frames of one charger, oldest first."""
    rows = await session.exec(
        select(MessageLog)
        .where(MessageLog.charger_id == charger_id)
        .order_by(col(MessageLog.id).desc())
        .limit(limit)
    )
    return list(reversed(rows.all()))
