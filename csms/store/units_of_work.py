"""One unit of work = one database transaction, retried when a concurrent one won.

Exactly-once rests on unique constraints and conditional updates: when two processes (or two
requests) race, the loser gets an IntegrityError, a lost conditional update
(:class:`Conflict`), a SQLite "database is locked" or a PostgreSQL serialization failure. The
whole unit then runs again on a fresh transaction and finds the winner's rows.

Two ways to run one:

* :func:`in_worker`: the hot paths (order, settlement, capture, the OCPP sink). ``work`` is a
  plain synchronous function of a :class:`~sqlmodel.Session`; it must not touch the event
  loop. On SQLite it runs in the database thread (:class:`~csms.store.db_worker.DbWorker`):
  the whole unit is one hop from the event loop instead of several per statement through
  aiosqlite, and the thread is the hot paths' single writer. On PostgreSQL it runs in the
  least busy of the database's unit threads (``Database.units``, a connection each): one hop
  from the event loop too, its round trips waited for in the thread (not resumed one by one
  by a busy event loop, which held a pooled connection for as long and ran the pool dry under
  load), its statements run by the driver's own cursor (:class:`~csms.store.fast.Fast`).
* :func:`in_transaction`: everything else, on the async engine's pooled sessions. A
  synchronous unit can run there too (:func:`run_sync`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.errors import StoreError
from csms.store.db import Database
from csms.store.db_worker import DbWorker

T = TypeVar("T")
LOG = logging.getLogger("csms.store.units_of_work")
ATTEMPTS = 12
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock
_JITTER = random.Random()  # our own: a backoff must not move the global random state


class Conflict(StoreError):
    """A conditional update matched no row: someone else changed it first; run again."""


def matched_one(what: str) -> Callable[[int], None]:
    """The row-count check of a kept conditional update (``Fast.later``'s ``check``):
    :class:`Conflict` ``what`` unless it matched one row."""

    def check(count: int) -> None:
        if count != 1:
            raise Conflict(what)

    return check


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError | Conflict):
        return True
    if isinstance(exc, OperationalError) and "locked" in str(exc).lower():
        return True
    if isinstance(exc, DBAPIError):
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return state in _RETRY_SQLSTATES or "deadlock" in str(exc).lower()
    return False


async def _backoff(attempt: int) -> None:
    await asyncio.sleep(_JITTER.uniform(0, 0.002 * 2 ** min(attempt, 6)))


async def in_transaction(db: Database, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Runs ``work(session)`` and commits; on a lost race, rolls back and runs it again."""
    for attempt in range(ATTEMPTS):
        async with db.session() as session:
            try:
                result = await work(session)
                await session.commit()
                return result
            except Exception as exc:
                await session.rollback()
                if attempt == ATTEMPTS - 1 or not _retryable(exc):
                    raise
                LOG.debug("unit of work lost a race (%s), attempt %d", type(exc).__name__, attempt)
        await _backoff(attempt)
    raise AssertionError("unreachable")


async def run_sync(session: AsyncSession, work: Callable[[Session], T]) -> T:
    """Runs the synchronous ``work`` on the caller's async session (statement by statement
    through the event loop; the session's synchronous side is a SQLModel session)."""
    return await session.run_sync(lambda sync: work(cast(Session, sync)))


def _in_session(connection: Connection, work: Callable[[Session], T]) -> T:
    """Runs ``work`` on an ORM session that joins the worker's transaction (the worker
    commits or rolls back; the session only flushes)."""
    with Session(bind=connection, expire_on_commit=False) as session:
        result = work(session)
        session.flush()
        return result


def uses_thread(db: Database) -> bool:
    """Whether :func:`in_worker` runs units in the database thread (SQLite on a file)."""
    return db.worker.threaded and db.engine.dialect.name == "sqlite"


def _waiting(worker: DbWorker) -> int:
    return worker.waiting


async def _on_pool(db: Database, work: Callable[[Session], T]) -> T:
    async with db.engine.begin() as connection:
        return await connection.run_sync(_in_session, work)


async def in_worker(db: Database, work: Callable[[Session], T]) -> T:
    """Runs the synchronous ``work(session)`` in one transaction, committed before this
    returns (in the database thread on SQLite, in a unit thread on PostgreSQL); on a
    lost race, runs it again."""
    for attempt in range(ATTEMPTS):
        try:
            if uses_thread(db):
                return await db.worker.run(_in_session, work)
            if db.units:
                return await min(db.units, key=_waiting).run(_in_session, work)
            return await _on_pool(db, work)
        except Exception as exc:
            if attempt == ATTEMPTS - 1 or not _retryable(exc):
                raise
            LOG.debug("unit of work lost a race (%s), attempt %d", type(exc).__name__, attempt)
        await _backoff(attempt)
    raise AssertionError("unreachable")
