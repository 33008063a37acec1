"""One unit of work = one database transaction, retried when a concurrent one won.

Exactly-once rests on unique constraints and conditional updates: when two processes (or two
requests) race, the loser gets an IntegrityError, a lost conditional update
(:class:`Conflict`), a SQLite "database is locked" or a PostgreSQL serialization failure. The
whole unit then runs again from a fresh session and finds the winner's rows.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.payments.errors import PaymentError
from csms.store.db import Database

T = TypeVar("T")
LOG = logging.getLogger("csms.payments")
ATTEMPTS = 12
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock


class Conflict(PaymentError):
    """A conditional update matched no row: someone else changed it first; run again."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError | Conflict):
        return True
    if isinstance(exc, OperationalError) and "locked" in str(exc).lower():
        return True
    if isinstance(exc, DBAPIError):
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return state in _RETRY_SQLSTATES or "deadlock" in str(exc).lower()
    return False


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
        await asyncio.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
    raise AssertionError("unreachable")
