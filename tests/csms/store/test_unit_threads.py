"""On PostgreSQL the money side's units of work (``in_worker``) run in the database's unit
threads, a connection each, not on the async engine's pool: with that pool held to the last
connection (as a loaded process held it) a unit still runs, and concurrent units spread over
the threads."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import text
from sqlmodel import Session

from csms.store.db import PG_UNIT_CONNECTIONS, Database
from csms.store.units_of_work import in_worker

pytestmark = pytest.mark.postgres


def _where(session: Session, pause_s: float = 0.0) -> str:
    session.connection().execute(text("SELECT pg_sleep(:s)"), {"s": pause_s})
    return threading.current_thread().name


async def test_a_unit_runs_while_the_async_pool_is_held(pg_url: str) -> None:
    db = Database.connect(pg_url, pool_size=1, max_overflow=0)
    try:
        async with db.engine.connect() as held:  # the pool's only connection
            await held.execute(text("SELECT 1"))
            async with asyncio.timeout(5):  # the pool would make it wait 10 s, then fail
                name = await in_worker(db, _where)
        assert name.startswith("db-units-")
    finally:
        await db.dispose()


async def test_concurrent_units_spread_over_the_threads(pg_url: str) -> None:
    db = Database.connect(pg_url)
    try:
        assert len(db.units) == PG_UNIT_CONNECTIONS >= 2
        names = await asyncio.gather(
            *(in_worker(db, lambda s: _where(s, 0.3)) for _ in range(PG_UNIT_CONNECTIONS))
        )
        assert len(set(names)) == PG_UNIT_CONNECTIONS  # one each, none queued behind another
        assert sum(worker.waiting for worker in db.units) == 0
    finally:
        await db.dispose()
