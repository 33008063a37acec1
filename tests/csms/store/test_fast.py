"""Statements on the driver's cursor (csms/store/fast.py) behave as through SQLAlchemy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, bindparam, create_engine, event, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from csms.store import chargers as store
from csms.store.db import Database, migrate
from csms.store.db_worker import DbWorker
from csms.store.fast import Fast
from csms.store.writer import CHARGERS, table_of

NOW = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
EVSES = table_of(store.Evse)

_ROW = Fast(
    select(CHARGERS.c.id, CHARGERS.c.online, CHARGERS.c.last_seen, CHARGERS.c.registration).where(
        CHARGERS.c.id == bindparam("cid")
    )
)
_SEEN = Fast(
    update(CHARGERS)
    .where(CHARGERS.c.id == bindparam("cid"))
    .values(online=True, last_seen=bindparam("now"), last_boot_at=bindparam("now"))
)
_NEW = Fast(
    insert(CHARGERS)
    .values(id=bindparam("cid"), registration="Accepted", created_at=bindparam("now"))
    .returning(CHARGERS.c.id, CHARGERS.c.registration)
)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database.connect(db_url)
    await migrate(database.engine)
    async with database.session() as session:
        await store.create_charger(session, charger_id="F1", password_hash=None, evses=2, now=NOW)
    try:
        yield database
    finally:
        await database.dispose()


def _both_ways(conn: Connection, charger_id: str) -> tuple[object, object]:
    through_sqlalchemy = conn.execute(_ROW.statement, {"cid": charger_id}).first()
    return _ROW.first(conn, {"cid": charger_id}), tuple(through_sqlalchemy or ())


async def test_rows_and_types_match_sqlalchemy(db: Database) -> None:
    later = NOW + timedelta(hours=5)

    def unit(conn: Connection) -> tuple[int, object, object, object]:
        changed = _SEEN.execute(conn, {"cid": "F1", "now": later})
        fast, slow = _both_ways(conn, "F1")
        return changed, fast, slow, _ROW.first(conn, {"cid": "nobody"})

    changed, fast, slow, missing = await db.worker.run(unit)
    assert changed == 1 and missing is None
    assert fast == slow == ("F1", True, later, "Accepted")
    assert isinstance(fast, tuple) and fast[2].tzinfo is not None  # aware UTC, as the type says
    async with db.engine.connect() as conn:  # committed, and stored as SQLAlchemy would
        stored = (await conn.execute(select(CHARGERS.c.last_boot_at, CHARGERS.c.online))).one()
    assert tuple(stored) == (later, True)


async def test_insert_returning_and_a_conflict_raised_as_sqlalchemy_does(db: Database) -> None:
    def insert_twice(conn: Connection) -> None:
        assert _NEW.first(conn, {"cid": "F2", "now": NOW}) == ("F2", "Accepted")
        _NEW.first(conn, {"cid": "F2", "now": NOW})  # the primary key again

    with pytest.raises(IntegrityError):
        await db.worker.run(insert_twice)

    def after(conn: Connection) -> object:  # rolled back whole; the connection still works
        return _ROW.first(conn, {"cid": "F2"}), _NEW.scalar(conn, {"cid": "F3", "now": NOW})

    assert await db.worker.run(after) == (None, "F3")


async def test_without_a_thread_it_runs_through_sqlalchemy() -> None:
    url = "sqlite+aiosqlite:///:memory:"
    engine = create_async_engine(url, poolclass=StaticPool)  # one in-memory database
    await migrate(engine)
    worker = DbWorker(engine, url, sqlite_pragmas=lambda *_: None)
    try:
        assert not worker.threaded  # an async driver: no cursor of its own to borrow

        def unit(conn: Connection) -> object:
            _NEW.execute(conn, {"cid": "M1", "now": NOW})
            return _ROW.first(conn, {"cid": "M1"})

        assert await worker.run(unit) == ("M1", False, None, "Accepted")
    finally:
        await worker.close()
        await engine.dispose()


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        (
            select(CHARGERS.c.id).where(CHARGERS.c.id.in_(bindparam("ids", expanding=True))),
            "computed",
        ),
        (insert(CHARGERS).values(id=bindparam("ids")), "computed default"),  # created_at: utcnow()
    ],
)
def test_statements_it_cannot_run_faithfully_are_refused(statement: object, reason: str) -> None:
    engine = create_engine("sqlite://")
    try:
        with engine.connect() as conn, pytest.raises(ValueError, match=reason):
            Fast(statement).all(conn, {"ids": ["a"]})  # type: ignore[arg-type]
    finally:
        engine.dispose()


async def test_cursor_event_listeners_see_fast_statements(db: Database) -> None:
    seen: list[str] = []

    def before(conn: object, cursor: object, statement: str, *rest: object) -> None:
        seen.append("before " + statement.split()[0])

    def after(conn: object, cursor: object, statement: str, *rest: object) -> None:
        seen.append("after " + statement.split()[0])

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    try:
        await db.worker.run(lambda conn: _ROW.first(conn, {"cid": "F1"}))
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)
    assert [s for s in seen if "SELECT" in s] == ["before SELECT", "after SELECT"]
