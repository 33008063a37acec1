"""The support log of OCPP frames: written in batches by one task, bounded twice.

Frames are handed over with :meth:`MessageLogWriter.record`, which never blocks and never
grows memory without bound: the queue holds at most ``queue_size`` frames and drops (and
counts) the rest, because this log is for support and must not slow charging down. The table
keeps about ``limit`` rows per charger; older rows are pruned after each batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.db import Database
from csms.store.models import MessageLog

LOG = logging.getLogger("csms.store")
FRAME_MAX_CHARS = 4000


class MessageLogWriter:
    """Batches frames into ``message_log``; run :meth:`run` as an owned task."""

    def __init__(
        self,
        db: Database,
        *,
        limit: int,
        clock: Callable[[], datetime],
        queue_size: int = 10_000,
        batch_size: int = 500,
    ) -> None:
        self._db = db
        self._limit = limit
        self._clock = clock
        self._queue: asyncio.Queue[MessageLog] = asyncio.Queue(queue_size)
        self._batch_size = batch_size
        self.dropped = 0

    def record(self, charger_id: str, direction: str, frame: str) -> None:
        if self._limit <= 0:
            return
        row = MessageLog(
            charger_id=charger_id,
            direction=direction,
            frame=frame[:FRAME_MAX_CHARS],
            at=self._clock(),
        )
        try:
            self._queue.put_nowait(row)
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception:
                LOG.exception("message log: lost a batch of %d frames", len(batch))

    async def flush(self) -> None:
        """Writes whatever is queued now (used on shutdown and by tests)."""
        batch = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._write(batch)

    async def _write(self, batch: list[MessageLog]) -> None:
        chargers = {row.charger_id for row in batch}
        async with self._db.session() as session:
            session.add_all(batch)
            await session.flush()
            for charger_id in chargers:
                await _prune(session, charger_id, self._limit)
            await session.commit()


async def _prune(session: AsyncSession, charger_id: str, limit: int) -> None:
    cutoff = (
        select(MessageLog.id)
        .where(MessageLog.charger_id == charger_id)
        .order_by(col(MessageLog.id).desc())
        .offset(limit)
        .limit(1)
    )
    oldest_kept = (await session.exec(cutoff)).first()
    if oldest_kept is not None:
        await session.exec(
            delete(MessageLog).where(
                col(MessageLog.charger_id) == charger_id, col(MessageLog.id) <= oldest_kept
            )
        )


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
