"""The store writer: one task owns the hot-path writes and commits them in groups.

Handlers hand a write over as an *operation* (an async function of a :class:`Batch`) with
:meth:`StoreWriter.execute`; the writer takes everything that is waiting (at most
``max_batch`` operations), runs it on one connection in one transaction with SQLAlchemy Core,
commits once, and then resolves each caller's future. A caller therefore still answers its
charger only after its data is committed, but a hundred callers share one commit and the
writer's own connection (held for its life, so it never queues behind handshakes for a pooled
one): no per-CALL ORM session, no pool exhaustion, and on SQLite no writers queueing on the
database lock. If a group fails on a conflict (IntegrityError), its operations are retried one
transaction each, so a duplicate fails only its own caller; any other failure fails the group
(its callers answer CALLERROR InternalError) and the connection is replaced.

Heartbeats need no durability before the answer: :meth:`StoreWriter.touch` records
``last_seen`` in memory and the writer writes the newest value per charger every
``touch_interval_s`` (one ``executemany``), so memory is bounded by the number of chargers.
The connection state (online/offline) is kept the same way, and also written at the start of
every group, so it is stored before the charger's next CALL is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from csms.errors import StoreError
from csms.store.db import Database
from csms.store.models import Charger

LOG = logging.getLogger("csms.store")
T = TypeVar("T")


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a SQLModel table class (sqlmodel does not type ``__table__``)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


CHARGERS = table_of(Charger)


class StoreBusy(StoreError):
    """The writer's queue is full: the caller answers InternalError instead of waiting."""


class StoreTimeout(StoreError):
    """An operation was not committed within the caller's deadline."""


@dataclass(slots=True)
class Batch:
    """What an operation is given: the group's connection and a place for bulk rows.

    Rows added with :meth:`add_rows` are inserted with one ``executemany`` per table just
    before the commit (operations must not read them back within the same group).
    """

    conn: AsyncConnection
    rows: dict[Table, list[Mapping[str, Any]]] = field(default_factory=dict)

    def add_rows(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.rows.setdefault(table, []).extend(rows)

    async def insert_rows(self) -> None:
        for table, rows in self.rows.items():
            await self.conn.execute(table.insert(), rows)
        self.rows.clear()


Operation = Callable[[Batch], Awaitable[T]]


@dataclass(slots=True)
class _Pending:
    op: Operation[Any]
    future: asyncio.Future[Any]


class StoreWriter:
    """Group commit of store operations; run :meth:`run` as an owned task."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 200,
        queue_size: int = 20_000,
        timeout_s: float = 15.0,
        touch_interval_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(queue_size)
        self._timeout_s = timeout_s
        self._touch_interval_s = touch_interval_s
        self._monotonic = monotonic
        self._touches: dict[str, datetime] = {}
        self._presence: dict[str, tuple[bool, str | None, datetime]] = {}
        self._last_touch_flush = monotonic()
        self._running = False
        self._conn: AsyncConnection | None = None
        self.groups = 0  # committed groups (for tests and diagnostics)

    # --- callers ----------------------------------------------------------------------------

    async def execute(self, op: Operation[T]) -> T:
        """Runs ``op`` in the next group and returns its result once that group committed.

        Raises :class:`StoreBusy` when too much is waiting and :class:`StoreTimeout` after
        ``timeout_s``; when the writer is not running (startup, shutdown) ``op`` runs alone.
        """
        if not self._running:
            return await self._run_alone(op)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Pending(op, future))
        except asyncio.QueueFull as exc:
            raise StoreBusy(f"{self._queue.maxsize} store operations already waiting") from exc
        try:
            async with asyncio.timeout(self._timeout_s):  # cancels the future: the writer skips it
                return await future
        except TimeoutError as exc:
            raise StoreTimeout(f"store operation not committed in {self._timeout_s}s") from exc

    def touch(self, charger_id: str, now: datetime) -> None:
        """Records ``last_seen`` in memory; written with the next periodic flush."""
        self._touches[charger_id] = now

    async def settle_presence(self, charger_id: str) -> None:
        """Waits until the charger's connection state is stored (for an answer that is not
        otherwise committed, such as a Heartbeat right after connecting)."""
        if charger_id in self._presence:
            await self.execute(_nothing)

    def set_presence(
        self, charger_id: str, *, online: bool, version: str | None, now: datetime
    ) -> None:
        """Records the connection state (``online``, ``ocpp_version``, ``last_seen``) in memory:
        written at the start of the next group, so before the answer to the charger's next
        CALL, or by the periodic flush. Only the newest state per charger is kept."""
        self._presence[charger_id] = (online, version, now)

    # --- the task ---------------------------------------------------------------------------

    async def run(self) -> None:
        self._running = True
        try:
            while True:
                try:
                    first = await asyncio.wait_for(self._queue.get(), self._touch_interval_s)
                except TimeoutError:
                    first = None
                group = [] if first is None else [first]
                while len(group) < self._max_batch and not self._queue.empty():
                    group.append(self._queue.get_nowait())
                if group:
                    await self._commit_group(group)
                if self._monotonic() - self._last_touch_flush >= self._touch_interval_s:
                    await self.flush_touches()
        finally:
            self._running = False
            await self._drain()

    async def _drain(self) -> None:
        """Runs what is still queued when the task stops (shutdown), then lets go of the
        connection."""
        try:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                await self._settle_alone(item)
            with contextlib.suppress(Exception):
                await self.flush_touches()
        finally:
            await self._drop_connection()

    async def _connection(self) -> AsyncConnection:
        """The writer's own connection, held for its life: it never queues behind handshakes
        and API requests for a pooled one (a new one after a failure)."""
        if self._conn is None:
            self._conn = await self._db.engine.connect()
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        if not self._running:
            async with self._db.engine.begin() as conn:
                yield conn
            return
        conn = await self._connection()
        try:
            async with conn.begin():
                yield conn
        except IntegrityError:
            raise  # the operation's own conflict: the connection is fine
        except BaseException:
            await self._drop_connection()
            raise

    async def flush_touches(self) -> None:
        """Writes the remembered ``last_seen`` values and connection states (executemany)."""
        self._last_touch_flush = self._monotonic()
        if not self._touches and not self._presence:
            return
        touches, self._touches = self._touches, {}
        stmt = (
            update(CHARGERS)
            .where(CHARGERS.c.id == bindparam("cid"))
            .values(last_seen=bindparam("seen"))
        )
        try:
            async with self._transaction() as conn:
                await self._write_presence(conn)
                if touches:
                    await conn.execute(stmt, [{"cid": c, "seen": t} for c, t in touches.items()])
        except Exception:
            LOG.exception("store writer: lost %d last_seen updates", len(touches))

    async def _write_presence(self, conn: AsyncConnection) -> None:
        if not self._presence:
            return
        presence, self._presence = self._presence, {}
        rows = [
            {"cid": cid, "on": online, "seen": seen}
            for cid, (online, _version, seen) in presence.items()
        ]
        await conn.execute(
            update(CHARGERS)
            .where(CHARGERS.c.id == bindparam("cid"))
            .values(online=bindparam("on"), last_seen=bindparam("seen")),
            rows,
        )
        versions = [
            {"cid": cid, "v": version}
            for cid, (_online, version, _seen) in presence.items()
            if version is not None
        ]
        if versions:
            await conn.execute(
                update(CHARGERS)
                .where(CHARGERS.c.id == bindparam("cid"))
                .values(ocpp_version=bindparam("v")),
                versions,
            )

    async def _commit_group(self, group: list[_Pending]) -> None:
        live = [item for item in group if not item.future.done()]
        if not live:
            return
        try:
            async with self._transaction() as conn:
                await self._write_presence(conn)
                batch = Batch(conn)
                results = [await item.op(batch) for item in live]
                await batch.insert_rows()
        except IntegrityError as exc:
            if len(live) == 1:
                _fail(live[0], exc)
                return
            # one operation's conflict (a duplicate): the others must not fail with it
            for item in live:
                await self._settle_alone(item)
            return
        except Exception as exc:  # the store itself failed: every caller answers an error
            LOG.warning("store writer: a group of %d failed: %s", len(live), exc)
            for item in live:
                _fail(item, exc)
            return
        self.groups += 1
        for item, result in zip(live, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    async def _settle_alone(self, item: _Pending) -> None:
        if item.future.done():
            return
        try:
            result = await self._run_alone(item.op)
        except Exception as exc:
            _fail(item, exc)
            return
        if not item.future.done():
            item.future.set_result(result)

    async def _run_alone(self, op: Operation[T]) -> T:
        async with self._transaction() as conn:
            batch = Batch(conn)
            result = await op(batch)
            await batch.insert_rows()
        return result


async def _nothing(batch: Batch) -> None:
    """An empty operation: its group commit writes the pending connection states."""


def _fail(item: _Pending, exc: Exception) -> None:
    if not item.future.done():
        item.future.set_exception(exc)
