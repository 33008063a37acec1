"""The database thread: a unit of work runs there whole, one hop from the event loop.

Through SQLAlchemy's asyncio layer every statement is a round trip through the event loop
(aiosqlite adds a thread hand-over per cursor call): a unit of ten statements waits ten times
for a busy loop to come round. :class:`DbWorker` instead runs a plain synchronous function of a
SQLAlchemy :class:`~sqlalchemy.engine.Connection` in one dedicated thread that holds its own
connection for life, inside one transaction, and the loop awaits it once.

* SQLite: the standard library driver on the same file (WAL, busy timeout, foreign keys, as
  the async engine). The thread is the process's single writer for the hot paths, so they
  never queue on the database lock against each other.
* PostgreSQL: psycopg (3), synchronous, on its own connection; writes that nobody reads back
  ride along with the connection's next statement or its commit in one pipeline
  (:func:`~csms.store.fast.pipeline_writes`). A worker that only reads (``reads_only``) runs
  in autocommit: each statement is a transaction of its own, so a point read is one round
  trip (no BEGIN before it, no COMMIT after); at READ COMMITTED each statement had a
  snapshot of its own already.
* Anything else (an in-memory SQLite database, another driver): the function runs through
  ``AsyncConnection.run_sync`` on the async engine: the same code, without the saving.

A unit that raises rolls back and re-raises; a connection error also replaces the connection.
The functions must not touch the event loop (no awaits, no asyncio objects).

The thread holds its connection for life, so the pool's pre-ping on checkout never sees it: a
server connection that has been idle for ``IDLE_PING_S`` is pinged before the next unit (as the
pool does), and replaced if the server has dropped it (a killed backend, a restarted server),
so that the unit does not fail for it. A worker that only reads (``reads_only``) also runs a
unit whose connection was lost under it once more on a new connection: a read has nothing to
undo. A writing unit that lost its connection fails (its caller answers an error and is
retried by its client): whether a lost COMMIT took effect is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from csms.store.fast import pipeline_writes

LOG = logging.getLogger("csms.store")
P = ParamSpec("P")
T = TypeVar("T")
Unit = Callable[Concatenate[Connection, P], T]
Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[Connection], Any]]
IDLE_PING_S = 1.0  # a server connection idle this long is pinged before its next unit


def sync_url(url: str) -> str | None:
    """The synchronous driver's URL for ``url``, or None when there is none to use."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:" or database.startswith("file:"):
            return None  # a second connection would see another database
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return None


def _make_sync_engine(
    url: str,
    sqlite_pragmas: Callable[[Any, Any], None],
    extra_sqlite: tuple[str, ...],
    reads_only: bool = False,
) -> Engine:
    if url.startswith("sqlite"):
        # one connection, used by one thread only; the thread serialises access itself
        engine = create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False, "timeout": 10.0},
        )
        event.listen(engine, "connect", sqlite_pragmas)
        if extra_sqlite:

            def more_pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                for pragma in extra_sqlite:
                    cursor.execute(pragma)
                cursor.close()

            event.listen(engine, "connect", more_pragmas)
        return engine
    if reads_only:  # a read needs no BEGIN and COMMIT: one round trip instead of two
        return create_engine(
            url, poolclass=StaticPool, pool_pre_ping=True, isolation_level="AUTOCOMMIT"
        )
    engine = create_engine(url, poolclass=StaticPool, pool_pre_ping=True)
    pipeline_writes(engine)  # a unit's writes ride along with its next round trip
    return engine


class DbWorker:
    """Runs synchronous units of work in one database thread (or through ``run_sync``)."""

    def __init__(
        self,
        async_engine: AsyncEngine,
        url: str,
        *,
        sqlite_pragmas: Callable[[Any, Any], None],
        name: str = "db-worker",
        extra_sqlite: tuple[str, ...] = (),
        reads_only: bool = False,
    ) -> None:
        self._async_engine = async_engine
        self._name = name
        target = sync_url(url)
        self._engine = (
            None
            if target is None
            else _make_sync_engine(target, sqlite_pragmas, extra_sqlite, reads_only)
        )
        self._server = target is not None and not target.startswith("sqlite")
        self._reads_only = reads_only
        self._used_at = 0.0  # monotonic time the held connection last ran a unit
        self._jobs: SimpleQueue[Job | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None
        self.units = 0  # units run (diagnostics and tests)
        self.waiting = 0  # units handed to the thread and not answered yet

    @property
    def threaded(self) -> bool:
        """True when units run in the database thread (not through ``run_sync``)."""
        return self._engine is not None

    async def run(self, unit: Unit[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs ``unit(conn, *args, **kwargs)`` in one transaction and returns its result
        once committed; an exception rolls the transaction back and is re-raised here."""
        return await self._submit(True, unit, *args, **kwargs)

    async def run_connection(self, unit: Unit[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Like :meth:`run`, but ``unit`` is handed the connection outside a transaction and
        begins and ends its own (several in one hop, such as a group and its retries)."""
        return await self._submit(False, unit, *args, **kwargs)

    async def _submit(
        self, transaction: bool, unit: Unit[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._engine is None:
            if not transaction:
                async with self._async_engine.connect() as aconn:
                    return await aconn.run_sync(unit, *args, **kwargs)
            async with self._async_engine.begin() as aconn:
                return await aconn.run_sync(unit, *args, **kwargs)
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        # a plain queue and call_soon_threadsafe: an executor's concurrent Future (a lock and
        # a condition per call) cost more than the hand-over itself
        self._jobs.put(
            (loop, future, lambda conn: self._unit(conn, transaction, unit, *args, **kwargs))
        )
        self.waiting += 1
        try:
            return await future
        finally:
            self.waiting -= 1

    def _serve(self) -> None:
        """The database thread: runs jobs in order until told to stop (``None``)."""
        while True:
            job = self._jobs.get()
            if job is None:  # close(): a clean goodbye, not the invalidation of a dead one
                conn, self._conn = self._conn, None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                return
            loop, future, call = job
            if future.cancelled():  # the caller gave up before it started: skip it
                continue
            try:
                result = self._with_connection(call)
            except BaseException as exc:  # handed to the caller, whatever it is
                _hand_back(loop, _set_exception, future, exc)
            else:
                _hand_back(loop, _set_result, future, result)

    def _with_connection(self, call: Callable[[Connection], Any]) -> Any:
        try:
            return self._attempt(call)
        except Exception:
            if not (self._reads_only and self._conn is None):  # not a read that lost it
                raise
            LOG.info("%s: the connection was lost under a read; reading again", self._name)
        return self._attempt(call)

    def _attempt(self, call: Callable[[Connection], Any]) -> Any:
        assert self._engine is not None
        if self._conn is not None and self._gone():
            self._drop()
        if self._conn is None:
            self._conn = self._engine.connect()
        conn = self._conn
        try:
            result = call(conn)
        except IntegrityError:
            raise  # the unit's own conflict: the connection is fine
        except BaseException:
            if not _alive(conn):
                self._drop()
            raise
        finally:
            self._used_at = time.monotonic()
        if not _alive(conn):
            self._drop()
        self.units += 1
        return result

    def _gone(self) -> bool:
        """Whether the held server connection, idle for ``IDLE_PING_S``, no longer answers."""
        if not self._server or time.monotonic() - self._used_at < IDLE_PING_S:
            return False
        assert self._engine is not None and self._conn is not None
        dbapi_connection = self._conn.connection.dbapi_connection
        try:
            return dbapi_connection is None or not self._engine.dialect.do_ping(dbapi_connection)
        except Exception:
            return True

    @staticmethod
    def _unit(
        conn: Connection, transaction: bool, unit: Unit[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if transaction:
            with conn.begin():
                return unit(conn, *args, **kwargs)
        try:
            return unit(conn, *args, **kwargs)
        finally:
            if conn.in_transaction():  # a unit that forgot to end its own
                conn.rollback()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
                conn.close()

    async def close(self) -> None:
        """Lets go of the thread and its connection (after the jobs already queued)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(thread.join)
        if self._engine is not None:
            self._engine.dispose()


def _hand_back(
    loop: asyncio.AbstractEventLoop,
    setter: Callable[[asyncio.Future[Any], Any], None],
    future: asyncio.Future[Any],
    value: Any,
) -> None:
    try:
        loop.call_soon_threadsafe(setter, future, value)
    except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
        LOG.debug("db worker: result for a closed event loop dropped")


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _alive(conn: Connection) -> bool:
    return not conn.closed and not conn.invalidated
