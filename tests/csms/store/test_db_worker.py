"""The database thread: units of work run whole in one transaction, on both backends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from threading import current_thread

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from csms.store import chargers as store
from csms.store.db import Database, migrate
from csms.store.db_worker import DbWorker, sync_url
from csms.store.writer import CHARGERS

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database.connect(db_url)
    await migrate(database.engine)
    async with database.session() as session:
        for n in range(3):
            await store.create_charger(
                session, charger_id=f"D{n}", password_hash=None, evses=1, now=NOW
            )
    try:
        yield database
    finally:
        await database.dispose()


def _set_location(conn: Connection, charger_id: str, location: str) -> str:
    conn.execute(update(CHARGERS).where(CHARGERS.c.id == charger_id).values(location=location))
    return threading.current_thread().name


def _fail_after_update(conn: Connection) -> None:
    _set_location(conn, "D0", "lost")
    raise RuntimeError("boom")


def _duplicate(conn: Connection) -> None:
    row = conn.execute(select(CHARGERS).where(CHARGERS.c.id == "D0")).one()._asdict()
    conn.execute(CHARGERS.insert().values(row))


async def _location(db: Database, charger_id: str) -> str | None:
    async with db.engine.connect() as conn:
        value = await conn.scalar(select(CHARGERS.c.location).where(CHARGERS.c.id == charger_id))
    return None if value is None else str(value)


async def test_a_unit_runs_in_the_database_thread_and_commits(db: Database) -> None:
    assert db.worker.threaded  # file SQLite and PostgreSQL both get the thread
    thread = await db.worker.run(_set_location, "D1", "Bay 7")
    assert thread.startswith("db-worker")
    assert thread != threading.current_thread().name
    assert await _location(db, "D1") == "Bay 7"  # visible to the async engine: committed


async def test_a_failing_unit_rolls_back_and_the_worker_goes_on(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        await db.worker.run(_fail_after_update)
    assert await _location(db, "D0") != "lost"
    with pytest.raises(IntegrityError):
        await db.worker.run(_duplicate)
    await db.worker.run(_set_location, "D0", "after")
    assert await _location(db, "D0") == "after"


async def test_concurrent_units_are_serialised(db: Database) -> None:
    def bump(conn: Connection, n: int) -> int:
        count = conn.scalar(select(func.count()).select_from(CHARGERS))
        conn.execute(update(CHARGERS).where(CHARGERS.c.id == "D2").values(location=str(n)))
        return int(count or 0)

    counts = await asyncio.gather(*(db.worker.run(bump, n) for n in range(50)))
    assert counts == [3] * 50
    assert db.worker.units >= 50


def test_sync_urls() -> None:
    assert sync_url("sqlite+aiosqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert sync_url("sqlite+aiosqlite:///:memory:") is None
    assert sync_url("sqlite+aiosqlite://") is None
    assert (
        sync_url("postgresql+asyncpg://u:p%40ss@127.0.0.1:5432/db")
        == "postgresql+psycopg://u:p%40ss@127.0.0.1:5432/db"
    )


async def test_without_a_sync_driver_the_unit_runs_through_run_sync() -> None:
    url = "sqlite+aiosqlite:///:memory:"
    engine = create_async_engine(url)
    worker = DbWorker(engine, url, sqlite_pragmas=lambda *_: None)
    try:
        assert not worker.threaded
        answer = await worker.run(lambda conn: (conn.scalar(select(1 + 1)), current_thread()))
        assert answer == (2, threading.current_thread())  # no thread of its own
    finally:
        await worker.close()
        await engine.dispose()


async def test_sqlite_wal_is_checkpointed_by_its_own_thread(db: Database, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        assert db.checkpointer is None  # PostgreSQL: nothing to do
        await asyncio.wait_for(db.run_checkpoints(0.01), 1)  # returns at once
        return
    assert db.checkpointer is not None
    autocheckpoint = await db.worker.run(
        lambda conn: conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    )
    assert autocheckpoint == 0  # the hot paths' thread never checkpoints itself
    for n in range(200):
        await db.worker.run(_set_location, "D1", f"bay {n}")
    task = asyncio.create_task(db.run_checkpoints(0.01))
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            if db.checkpointer.units:
                break
        assert db.checkpointer.units >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # PASSIVE copied the frames back: the next write starts the WAL from its beginning
    frames = await db.checkpointer.run_connection(
        lambda conn: conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    )
    assert frames[0] == 0 and frames[1] == frames[2]  # not busy; every frame checkpointed
