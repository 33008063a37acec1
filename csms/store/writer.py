"""The store writer: one task owns the hot-path writes and commits them in groups.

Handlers hand a write over as an *operation* (a synchronous function of a :class:`Batch`) with
:meth:`StoreWriter.execute`; the writer takes everything that is waiting (at most
``max_batch`` operations) and runs the whole group in the database thread
(:mod:`csms.store.db_worker`, one hop from the event loop) in one transaction with SQLAlchemy
Core, commits once, and then resolves each caller's future. A caller therefore still answers
its charger only after its data is committed, but a hundred callers share one commit and one
hop: no per-CALL ORM session, no round trip through the loop per statement, and on SQLite no
writers queueing on the database lock. If a group fails (an IntegrityError from a duplicate,
or anything else), its operations are retried one transaction each in the same hop, so a
failing operation fails only its own caller.

On PostgreSQL the writer has several *lanes*, one per connection of ``Database.writers``: an
operation goes to the lane of its charger (``key``), so each lane's group is a transaction of
its own chargers' rows and the lanes' round trips to the server overlap instead of queueing
behind one another; two lanes never write the same charger's rows, so they cannot deadlock on
them. SQLite has one writer at a time: one lane.

Heartbeats need no durability before the answer: :meth:`StoreWriter.touch` records
``last_seen`` in memory and the writer writes the newest value per charger every
``touch_interval_s`` (one ``executemany``), so memory is bounded by the number of chargers; a
charger's row is written at most every ``last_seen_step_s`` (10 s) while it is connected
(writing it for every frame made it a large share of the store's statements under load), and
:meth:`StoreWriter.last_seen` gives the newer value not yet written (the operator API shows it).
The connection state (online/offline) is kept the same way, and also written at the start of
every group, so it is stored before the charger's next CALL is answered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, update
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from csms import metrics
from csms.errors import StoreError
from csms.store.db import Database
from csms.store.db_worker import DbWorker
from csms.store.fast import Fast, pipelined
from csms.store.models import Charger

LOG = logging.getLogger("csms.store")
T = TypeVar("T")
TOUCH_CHUNK = 500  # last_seen rows per unit of the database thread (short units)
LAST_SEEN_STEP_S = 10.0  # a connected charger's last_seen row is written at most this often


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a SQLModel table class (sqlmodel does not type ``__table__``)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


CHARGERS = table_of(Charger)
_TOUCH = (
    update(CHARGERS).where(CHARGERS.c.id == bindparam("cid")).values(last_seen=bindparam("seen"))
)
_PRESENCE = (
    update(CHARGERS)
    .where(CHARGERS.c.id == bindparam("cid"))
    .values(online=bindparam("on"), last_seen=bindparam("seen"))
)
_VERSION = (
    update(CHARGERS).where(CHARGERS.c.id == bindparam("cid")).values(ocpp_version=bindparam("v"))
)


class StoreBusy(StoreError):
    """The writer's queue is full: the caller answers InternalError instead of waiting."""


class StoreTimeout(StoreError):
    """An operation was not committed within the caller's deadline."""


@functools.cache
def _row_insert(table: Table, names: tuple[str, ...]) -> Fast:
    return Fast(table.insert().values({name: bindparam(name) for name in names}).inline())


@dataclass(slots=True)
class Batch:
    """What an operation is given: the group's connection (synchronous, in the database
    thread) and a place for bulk rows.

    Rows added with :meth:`add_rows` are inserted with one ``executemany`` per table just
    before the commit (operations must not read them back within the same group); where the
    connection pipelines writes (PostgreSQL, :func:`~csms.store.fast.pipeline_writes`) each
    row is instead a kept write at once, sent with the group's next round trip.
    """

    conn: Connection
    rows: dict[Table, list[Mapping[str, Any]]] = field(default_factory=dict)

    def add_rows(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        if pipelined(self.conn):
            for row in rows:
                _row_insert(table, tuple(row)).later(self.conn, row)
            return
        self.rows.setdefault(table, []).extend(rows)

    def insert_rows(self) -> None:
        for table, rows in self.rows.items():
            self.conn.execute(table.insert(), rows)
        self.rows.clear()


Operation = Callable[[Batch], T]
Presence = dict[str, tuple[bool, str | None, datetime]]


@dataclass(slots=True)
class _Pending:
    op: Operation[Any]
    future: asyncio.Future[Any]
    deadline: float  # loop time after which it is failed instead of run


@dataclass(frozen=True, slots=True)
class _Failed:
    error: Exception


class _Lane:
    """One connection's share of the writer: its queue, remembered states and group loop."""

    def __init__(self, writer: StoreWriter, worker: DbWorker, queue_size: int) -> None:
        self.writer = writer
        self.worker = worker
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue(queue_size)
        self.touches: dict[str, datetime] = {}  # newest last_seen not written yet
        self.written_at: dict[str, float] = {}  # monotonic time of the last written one
        self.presence: Presence = {}
        self.last_flush = writer._monotonic()
        self.groups = 0

    async def run(self) -> None:
        writer = self.writer
        while True:
            try:  # asyncio.timeout: wait_for may swallow the cancel that stops the writer
                async with asyncio.timeout(writer._touch_interval_s):
                    first = await self.queue.get()
            except TimeoutError:
                first = None
            group = [] if first is None else [first]
            while len(group) < writer._max_batch and not self.queue.empty():
                group.append(self.queue.get_nowait())
            if group:
                await self.commit_group(group)
            if writer._monotonic() - self.last_flush >= writer._touch_interval_s:
                await self.flush_touches()

    async def drain(self) -> None:
        """Runs what is still queued when the task stops (shutdown)."""
        group: list[_Pending] = []
        while not self.queue.empty():
            group.append(self.queue.get_nowait())
        try:
            if group:
                await self.commit_group(group)
            await self.flush_touches(every=True)
        except Exception:
            LOG.exception("store writer: failed while draining at shutdown")

    async def flush_touches(self, *, every: bool = False) -> None:
        """Writes the connection states, and the ``last_seen`` of each charger whose row was
        last written ``last_seen_step_s`` ago or more (``every``: all of them)."""
        now = self.last_flush = self.writer._monotonic()
        if not self.touches and not self.presence:
            return
        step = 0.0 if every else self.writer._last_seen_step_s
        written_at = self.written_at
        rows = [
            (cid, seen)
            for cid, seen in self.touches.items()
            if now - written_at.get(cid, -math.inf) >= step
        ]
        for cid, _seen in rows:
            del self.touches[cid]
        presence, self.presence = self.presence, {}
        done = 0
        try:
            await self.worker.run(_write_touches, rows[:TOUCH_CHUNK], presence)
            for done in range(TOUCH_CHUNK, len(rows), TOUCH_CHUNK):  # short units
                await self.worker.run(_write_touches, rows[done : done + TOUCH_CHUNK], {})
            done = len(rows)
        except Exception:
            LOG.exception("store writer: %d last_seen updates wait for the next flush", len(rows))
            for cid, state in presence.items():  # put back; newer states win
                self.presence.setdefault(cid, state)
            for cid, seen in rows[done:]:
                self.touches.setdefault(cid, seen)
        for cid, _seen in rows[:done]:
            written_at[cid] = now

    async def commit_group(self, group: list[_Pending]) -> None:
        now = asyncio.get_running_loop().time()
        live = []
        for item in group:
            if item.future.done():
                continue
            if item.deadline < now:
                _fail(item, StoreTimeout(f"store operation not run in {self.writer._timeout_s}s"))
                continue
            live.append(item)
        if not live:
            return
        presence, self.presence = self.presence, {}
        started = time.perf_counter()
        try:
            outcomes = await self.worker.run_connection(
                _run_group, [item.op for item in live], presence
            )
        except Exception as exc:  # the store itself failed: every caller answers an error
            LOG.warning("store writer: a group of %d failed: %s", len(live), exc)
            for charger_id, state in presence.items():  # put back; newer states win
                self.presence.setdefault(charger_id, state)
            for item in live:
                _fail(item, exc)
            return
        self.groups += 1
        metrics.STORE_COMMIT_SECONDS.observe(time.perf_counter() - started)
        for item, outcome in zip(live, outcomes, strict=True):
            if item.future.done():
                continue
            if isinstance(outcome, _Failed):
                item.future.set_exception(outcome.error)
            else:
                item.future.set_result(outcome)


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
        last_seen_step_s: float = LAST_SEEN_STEP_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._max_batch = max_batch
        self._timeout_s = timeout_s
        self._touch_interval_s = touch_interval_s
        self._last_seen_step_s = last_seen_step_s
        self._monotonic = monotonic
        workers = db.writers
        per_lane = max(1, queue_size // len(workers))  # the bound is the writer's, all lanes
        self._lanes = [_Lane(self, worker, per_lane) for worker in workers]
        self._running = False

    @property
    def groups(self) -> int:
        """Committed groups, all lanes (for tests and diagnostics)."""
        return sum(lane.groups for lane in self._lanes)

    @property
    def backlog(self) -> int:
        """Operations waiting for their group, all lanes (readiness, diagnostics)."""
        return sum(lane.queue.qsize() for lane in self._lanes)

    def _lane(self, key: str | None) -> _Lane:
        lanes = self._lanes
        if key is None or len(lanes) == 1:
            return lanes[0]
        return lanes[zlib.crc32(key.encode()) % len(lanes)]

    # --- callers ----------------------------------------------------------------------------

    async def execute(self, op: Operation[T], key: str | None = None) -> T:
        """Runs ``op`` in the next group of the lane of ``key`` (the charger whose rows it
        writes) and returns its result once that group committed.

        Raises :class:`StoreBusy` when too much is waiting and :class:`StoreTimeout` when it
        waited more than ``timeout_s`` for its group; when the writer is not running (startup,
        shutdown) ``op`` runs alone.
        """
        lane = self._lane(key)
        if not self._running:
            return await lane.worker.run(_run_one, op)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        try:
            lane.queue.put_nowait(_Pending(op, future, loop.time() + self._timeout_s))
        except asyncio.QueueFull as exc:
            raise StoreBusy(f"{lane.queue.maxsize} store operations already waiting") from exc
        # no timer per operation: the writer fails what waited past its deadline instead of
        # running it (a group already running is bounded by the handler's own deadline)
        return await future

    def touch(self, charger_id: str, now: datetime) -> None:
        """Records ``last_seen`` in memory; written by a periodic flush (at most every
        ``last_seen_step_s`` per charger while it is connected)."""
        self._lane(charger_id).touches[charger_id] = now

    def last_seen(self, charger_id: str) -> datetime | None:
        """The charger's newest ``last_seen`` not written to its row yet, or None."""
        return self._lane(charger_id).touches.get(charger_id)

    async def settle_presence(self, charger_id: str) -> None:
        """Waits until the charger's connection state is stored (for an answer that is not
        otherwise committed, such as a Heartbeat right after connecting)."""
        if charger_id in self._lane(charger_id).presence:
            await self.execute(_nothing, charger_id)

    def set_presence(
        self, charger_id: str, *, online: bool, version: str | None, now: datetime
    ) -> None:
        """Records the connection state (``online``, ``ocpp_version``, ``last_seen``) in memory:
        written at the start of the lane's next group, so before the answer to the charger's
        next CALL, or by the periodic flush. Only the newest state per charger is kept."""
        lane = self._lane(charger_id)
        lane.presence[charger_id] = (online, version, now)
        lane.touches.pop(charger_id, None)  # the state's write carries last_seen too
        if online:
            lane.written_at[charger_id] = self._monotonic()
        else:  # forgotten once offline: memory stays bounded by the connected chargers
            lane.written_at.pop(charger_id, None)

    # --- the task ---------------------------------------------------------------------------

    async def run(self) -> None:
        self._running = True
        try:
            async with asyncio.TaskGroup() as lanes:  # one failing cancels the others
                for lane in self._lanes:
                    lanes.create_task(lane.run())
        finally:
            self._running = False
            for lane in self._lanes:
                await lane.drain()

    async def flush_touches(self, *, every: bool = False) -> None:
        """Writes the remembered connection states and the ``last_seen`` values that are due
        (``every``: all of them)."""
        for lane in self._lanes:
            await lane.flush_touches(every=every)


# --- in the database thread -----------------------------------------------------------------


def _run_one(conn: Connection, op: Operation[T]) -> T:
    batch = Batch(conn)
    result = op(batch)
    batch.insert_rows()
    return result


def _run_group(conn: Connection, ops: list[Operation[Any]], presence: Presence) -> list[Any]:
    """The whole group in one transaction; if anything in it fails, the connection states
    and then each operation again in its own transaction, so that only the failing
    operation's caller sees its error (a :class:`_Failed` in its place)."""
    try:
        with conn.begin():
            _write_presence(conn, presence)
            batch = Batch(conn)
            results = [op(batch) for op in ops]
            batch.insert_rows()
        return results
    except Exception as exc:
        first_error = exc
    with conn.begin():  # the connection states are not the operations' fault
        _write_presence(conn, presence)
    if len(ops) == 1:
        return [_Failed(first_error)]
    LOG.info("store writer: a group of %d failed (%s); one by one", len(ops), first_error)
    outcomes: list[Any] = []
    for op in ops:
        try:
            with conn.begin():  # a kept write may fail here, at the commit: after op returned
                result = _run_one(conn, op)
        except Exception as exc:
            outcomes.append(_Failed(exc))
        else:
            outcomes.append(result)
    return outcomes


def _write_touches(
    conn: Connection, touches: list[tuple[str, datetime]], presence: Presence
) -> None:
    _write_presence(conn, presence)
    if touches:
        conn.execute(_TOUCH, [{"cid": c, "seen": t} for c, t in touches])


_PRESENCE_ROW = Fast(_PRESENCE)
_VERSION_ROW = Fast(_VERSION)


def _write_presence(conn: Connection, presence: Presence) -> None:
    """The connection states: one executemany each, or where writes are pipelined
    (PostgreSQL) one kept write per charger, sent with the group's first round trip."""
    if not presence:
        return
    rows: list[dict[str, object]] = [
        {"cid": cid, "on": online, "seen": seen}
        for cid, (online, _version, seen) in presence.items()
    ]
    versions: list[dict[str, object]] = [
        {"cid": cid, "v": version}
        for cid, (_online, version, _seen) in presence.items()
        if version is not None
    ]
    if pipelined(conn):
        for row in rows:
            _PRESENCE_ROW.later(conn, row)
        for row in versions:
            _VERSION_ROW.later(conn, row)
        return
    conn.execute(_PRESENCE, rows)
    if versions:
        conn.execute(_VERSION, versions)


def _nothing(batch: Batch) -> None:
    """An empty operation: its group commit writes the pending connection states."""


def _fail(item: _Pending, exc: Exception) -> None:
    if not item.future.done():
        item.future.set_exception(exc)
