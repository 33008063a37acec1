"""The store writer: group commit, one failing operation fails alone, heartbeats in memory."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from csms.store import chargers as store
from csms.store.db import Database, migrate
from csms.store.writer import CHARGERS, Batch, StoreTimeout, StoreWriter

from ..round_trips import round_trips

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database.connect(db_url)
    await migrate(database.engine)
    async with database.session() as session:
        for n in range(20):
            await store.create_charger(
                session, charger_id=f"W{n}", password_hash=None, evses=1, now=NOW
            )
    try:
        yield database
    finally:
        await database.dispose()


async def _running(writer: StoreWriter) -> asyncio.Task[None]:
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0)  # let it start
    return task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_concurrent_operations_share_a_commit(db: Database) -> None:
    writer = StoreWriter(db)
    task = await _running(writer)

    def status(n: int) -> Callable[[Batch], int]:
        def op(batch: Batch) -> int:
            store.record_evse_status(
                batch,
                charger_id=f"W{n}",
                evse_id=1,
                connector_id=1,
                status="Charging",
                error_code=None,
                at=NOW,
            )
            return n

        return op

    try:
        results = await asyncio.gather(*(writer.execute(status(n)) for n in range(20)))
    finally:
        await _stop(task)
    assert results == list(range(20))
    assert writer.groups < 20  # grouped: far fewer commits than operations
    async with db.session() as session:
        evses = await store.evses_by_charger(session, [f"W{n}" for n in range(20)])
    assert {e[0].status for e in evses.values()} == {"Charging"}


def good(batch: Batch) -> str:
    """An operation that succeeds: W1's own status."""
    store.record_charger_status(batch, charger_id="W1", status="Available", now=NOW)
    return "ok"


async def test_a_failing_operation_fails_alone(db: Database) -> None:
    writer = StoreWriter(db)
    task = await _running(writer)

    def bad(batch: Batch) -> str:
        batch.conn.execute(CHARGERS.insert().values(id="W2", registration="Accepted"))
        return "unreachable"  # W2 exists: IntegrityError

    try:
        outcome = await asyncio.gather(
            writer.execute(good), writer.execute(bad), writer.execute(good), return_exceptions=True
        )
    finally:
        await _stop(task)
    assert outcome[0] == "ok" and outcome[2] == "ok"
    assert isinstance(outcome[1], IntegrityError)
    async with db.session() as session:
        charger = await store.get_charger(session, "W1")
    assert charger is not None and charger.status == "Available"


async def test_a_write_that_fails_at_the_commit_fails_alone(db: Database) -> None:
    """On PostgreSQL rows added with ``add_rows`` are kept writes, sent with the COMMIT: a
    duplicate there fails the commit after the operation returned. Retried one by one, that
    operation's caller gets the error and the others their own results (the retry recorded
    the result and then the failure: one outcome too many, and a lane that stopped)."""
    writer = StoreWriter(db)
    task = await _running(writer)

    def bad(batch: Batch) -> str:
        row = {"charger_id": "W3", "last_seq": 1, "updated_at": NOW}
        batch.add_rows(store.SYNCS, [row, row])  # the same key twice
        return "returned"

    try:
        async with asyncio.timeout(10):
            outcome = await asyncio.gather(
                writer.execute(good), writer.execute(bad), writer.execute(good),
                return_exceptions=True,
            )  # fmt: skip
            assert await writer.execute(good) == "ok"  # the lane still runs
    finally:
        await _stop(task)
    assert outcome[0] == "ok" and outcome[2] == "ok"
    assert isinstance(outcome[1], IntegrityError)


async def test_heartbeats_are_written_by_the_periodic_flush(db: Database) -> None:
    writer = StoreWriter(db)
    for n in range(20):
        writer.touch(f"W{n}", NOW)
    async with db.engine.connect() as conn:
        before = await conn.scalar(
            select(func.count()).select_from(CHARGERS).where(CHARGERS.c.last_seen.is_not(None))
        )
    await writer.flush_touches()
    async with db.engine.connect() as conn:
        after = await conn.scalar(
            select(func.count()).select_from(CHARGERS).where(CHARGERS.c.last_seen.is_not(None))
        )
    assert (before, after) == (0, 20)


async def test_a_group_runs_in_the_database_thread_in_one_hop(db: Database) -> None:
    writer = StoreWriter(db)
    seen: list[str] = []

    def op(batch: Batch) -> None:
        seen.append(threading.current_thread().name)
        store.record_charger_status(batch, charger_id="W3", status="Faulted", now=NOW)

    units_before = db.worker.units
    task = await _running(writer)
    try:
        await asyncio.gather(*(writer.execute(op) for _ in range(30)))
    finally:
        await _stop(task)
    assert seen and all(name.startswith("db-worker") for name in seen)
    assert db.worker.units - units_before == writer.groups < 30


async def test_connection_states_survive_a_failed_group(db: Database) -> None:
    writer = StoreWriter(db)
    writer.set_presence("W4", online=True, version="2.0.1", now=NOW)

    def broken(batch: Batch) -> None:
        raise RuntimeError("not the store's fault")

    task = await _running(writer)
    try:
        with pytest.raises(RuntimeError):
            await writer.execute(broken)
        await writer.settle_presence("W4")
    finally:
        await _stop(task)
    async with db.session() as session:
        charger = await store.get_charger(session, "W4")
    assert charger is not None and charger.online and charger.ocpp_version == "2.0.1"


async def test_an_operation_that_waited_past_its_deadline_is_not_run(db: Database) -> None:
    writer = StoreWriter(db, timeout_s=0.05)
    ran: list[str] = []

    def slow(batch: Batch) -> None:
        time.sleep(0.2)  # holds the database thread: the next one waits
        ran.append("slow")

    def late(batch: Batch) -> None:
        ran.append("late")

    task = await _running(writer)
    try:
        first = asyncio.ensure_future(writer.execute(slow))
        await asyncio.sleep(0.01)  # the slow group has started
        with pytest.raises(StoreTimeout):
            await writer.execute(late)
        await first
    finally:
        await _stop(task)
    assert ran == ["slow"]


async def test_each_charger_has_one_lane_and_postgresql_has_several(
    db: Database, db_url: str
) -> None:
    writer = StoreWriter(db)
    threads: dict[str, set[str]] = {}

    def status(n: int) -> Callable[[Batch], None]:
        def op(batch: Batch) -> None:
            threads.setdefault(f"W{n}", set()).add(threading.current_thread().name)
            store.record_charger_status(batch, charger_id=f"W{n}", status="Available", now=NOW)

        return op

    for n in range(20):
        writer.set_presence(f"W{n}", online=True, version="1.6", now=NOW)
    task = await _running(writer)
    try:
        for _ in range(3):
            await asyncio.gather(*(writer.execute(status(n), f"W{n}") for n in range(20)))
    finally:
        await _stop(task)
    assert all(len(names) == 1 for names in threads.values())  # a charger never changes lane
    lanes = set().union(*threads.values())
    if db_url.startswith("postgresql"):
        assert len(lanes) == len(db.writers) > 1
    else:
        assert lanes == {"db-worker"} and len(db.writers) == 1
    async with db.engine.connect() as conn:  # every lane wrote its own chargers' states
        online = await conn.scalar(
            select(func.count()).select_from(CHARGERS).where(CHARGERS.c.online.is_(True))
        )
    assert online == 20


async def test_a_connected_chargers_last_seen_row_is_written_at_most_every_step(
    db: Database,
) -> None:
    clock = [100.0]
    writer = StoreWriter(db, last_seen_step_s=10, monotonic=lambda: clock[0])
    later = NOW + timedelta(seconds=3)

    async def stored() -> datetime | None:
        async with db.engine.connect() as conn:
            value: datetime | None = await conn.scalar(
                select(CHARGERS.c.last_seen).where(CHARGERS.c.id == "W5")
            )
        return value

    writer.touch("W5", NOW)
    await writer.flush_touches()
    assert await stored() == NOW and writer.last_seen("W5") is None
    writer.touch("W5", later)
    clock[0] += 3
    await writer.flush_touches()  # written 3 s ago: the row waits, the writer knows
    assert await stored() == NOW and writer.last_seen("W5") == later
    clock[0] += 7
    await writer.flush_touches()
    assert await stored() == later and writer.last_seen("W5") is None
    writer.touch("W5", later + timedelta(seconds=1))
    await writer.flush_touches(every=True)  # shutdown: everything
    assert await stored() == later + timedelta(seconds=1)
    writer.set_presence("W5", online=False, version=None, now=later + timedelta(seconds=2))
    await writer.flush_touches()
    assert await stored() == later + timedelta(seconds=2)
    assert "W5" not in writer._lane("W5").written_at  # an offline charger is forgotten


async def test_connection_states_and_a_boot_go_with_the_groups_round_trips(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the connection states written at a group's start and a boot's row are
    kept writes: a group of a boot is its registration's read and the commit (it was five
    round trips: the states, their versions, the read, the boot's update, the commit)."""
    writer = StoreWriter(db)
    writer.set_presence("W5", online=True, version="1.6", now=NOW)
    writer.set_presence("W6", online=True, version="2.0.1", now=NOW)

    def boot(batch: Batch) -> str | None:
        return store.record_boot(
            batch, charger_id="W5", version="1.6", vendor="V", model="M",
            serial_number="S-1", firmware_version="1.0", now=NOW,
        )  # fmt: skip

    def warm(batch: Batch) -> str | None:  # the lane's connection makes its first statements
        return store.registration_of(batch.conn, "W5")

    await writer.execute(warm, "W5")
    task = await _running(writer)
    try:
        with round_trips(monkeypatch) as seen:
            assert await writer.execute(boot, "W5") == "Accepted"
    finally:
        await _stop(task)
    assert seen.count == (2 if db.engine.dialect.name == "postgresql" else 0)
    async with db.session() as session:
        w5, w6 = await store.get_charger(session, "W5"), await store.get_charger(session, "W6")
    assert w5 is not None and w6 is not None
    assert (w5.online, w5.ocpp_version, w5.vendor, w5.firmware_version) == (
        True, "1.6", "V", "1.0",
    )  # fmt: skip
    assert (w6.online, w6.ocpp_version) == (True, "2.0.1")
