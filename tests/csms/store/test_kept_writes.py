"""Writes kept for the next round trip (``Fast.later``) and the one-statement hot-path writes
built on them: the same rows on both databases as the step-by-step statements they replace."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from csms.protocol.meter_values import Sample, sample_rows
from csms.store import chargers as store
from csms.store import meter_values as stored_values
from csms.store import orders as store_orders
from csms.store import transactions as stored_transactions
from csms.store.db import Database, migrate
from csms.store.fast import Fast, pipelined
from csms.store.models import Evse, IdTag
from csms.store.transactions import TxnRow
from csms.store.units_of_work import Conflict, matched_one
from csms.store.writer import CHARGERS, Batch, table_of

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
EVSES = table_of(Evse)
ID_TAGS = table_of(IdTag)
ORDERS = store_orders.ORDERS
METER_VALUES = stored_values.METER_VALUES

_STATUS = Fast(
    update(CHARGERS).where(CHARGERS.c.id == bindparam("cid")).values(status=bindparam("status"))
)
_STATUS_OF = Fast(select(CHARGERS.c.status).where(CHARGERS.c.id == bindparam("cid")))
_NEW_CHARGER = Fast(
    insert(CHARGERS).values(id=bindparam("cid"), registration="Accepted", created_at=NOW)
)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database.connect(db_url)
    await migrate(database.engine)
    async with database.session() as session:
        for charger_id in ("K1", "K2"):
            await store.create_charger(
                session, charger_id=charger_id, password_hash=None, evses=1, now=NOW
            )
    try:
        yield database
    finally:
        await database.dispose()


@contextmanager
def statements() -> Iterator[list[str]]:
    """The first word of every statement sent from now on, in order."""
    seen: list[str] = []

    def before(_conn: object, _cursor: object, sql: str, *_rest: object) -> None:
        seen.append(sql.split()[0])

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)


def _is_postgresql(db: Database) -> bool:
    return db.engine.dialect.name == "postgresql"


async def test_a_kept_write_goes_with_the_next_statement_and_the_commit(db: Database) -> None:
    with statements() as seen:

        def unit(conn: Connection) -> tuple[bool, list[str], object]:
            _STATUS.later(conn, {"cid": "K1", "status": "Faulted"})
            before_read = [s for s in seen if s != "SELECT"]
            status = _STATUS_OF.scalar(conn, {"cid": "K1"})  # sees the kept write
            _STATUS.later(conn, {"cid": "K2", "status": "Faulted"})  # sent with the COMMIT
            return pipelined(conn), before_read, status

        kept, before_read, status = await db.worker.run(unit)
    assert status == "Faulted"
    assert kept is _is_postgresql(db)  # PostgreSQL keeps writes; SQLite runs them at once
    assert before_read == ([] if kept else ["UPDATE"])
    ours = [s for s in seen if s in ("UPDATE", "SELECT", "COMMIT")]
    # kept: the last write and the COMMIT in one pipeline (else the driver's commit, no statement)
    assert ours == ["UPDATE", "SELECT", "UPDATE"] + (["COMMIT"] if kept else [])
    async with db.engine.connect() as conn:
        stored = (await conn.execute(select(CHARGERS.c.id, CHARGERS.c.status))).all()
    assert sorted(tuple(row) for row in stored) == [("K1", "Faulted"), ("K2", "Faulted")]


async def test_a_statement_through_sqlalchemy_sends_the_kept_writes_first(db: Database) -> None:
    def unit(conn: Connection) -> object:
        _STATUS.later(conn, {"cid": "K1", "status": "Unavailable"})
        query = select(CHARGERS.c.status).where(CHARGERS.c.id == "K1")
        return conn.execute(query).scalar()

    assert await db.worker.run(unit) == "Unavailable"


async def test_a_failing_kept_write_fails_its_unit_whole(db: Database) -> None:
    def unit(conn: Connection) -> None:
        _STATUS.later(conn, {"cid": "K1", "status": "Faulted"})
        _NEW_CHARGER.later(conn, {"cid": "K2"})  # exists: raised at the latest by the commit

    with pytest.raises(IntegrityError):
        await db.worker.run(unit)

    def after(conn: Connection) -> object:  # nothing of it stored, the connection still works
        return _STATUS_OF.scalar(conn, {"cid": "K1"})

    assert await db.worker.run(after) != "Faulted"


async def test_a_rollback_drops_the_kept_writes(db: Database) -> None:
    class Undo(Exception):
        pass

    def unit(conn: Connection) -> None:
        _STATUS.later(conn, {"cid": "K1", "status": "Faulted"})
        raise Undo

    with pytest.raises(Undo):
        await db.worker.run(unit)

    def after(conn: Connection) -> tuple[object, object]:  # nor does the next transaction
        _STATUS.later(conn, {"cid": "K2", "status": "Reserved"})
        return _STATUS_OF.scalar(conn, {"cid": "K1"}), _STATUS_OF.scalar(conn, {"cid": "K2"})

    status_k1, status_k2 = await db.worker.run(after)
    assert status_k1 != "Faulted" and status_k2 == "Reserved"


def _record(batch: Batch, connector: int, status: str, at: datetime) -> None:
    store.record_evse_status(
        batch,
        charger_id="K1",
        evse_id=1,
        connector_id=connector,
        status=status,
        error_code=None,
        at=at,
    )


async def test_an_evse_status_keeps_the_newest_and_adds_a_new_connector(db: Database) -> None:
    def unit(conn: Connection) -> None:
        batch = Batch(conn)
        _record(batch, 1, "Charging", NOW)
        _record(batch, 1, "Faulted", NOW - timedelta(minutes=1))  # late: ignored
        _record(batch, 2, "Available", NOW)  # a connector not known yet
        _record(batch, 2, "Occupied", NOW + timedelta(seconds=1))
        batch.insert_rows()

    await db.worker.run(unit)
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(EVSES.c.connector_id, EVSES.c.status, EVSES.c.updated_at)
            .where(EVSES.c.charger_id == "K1")
            .order_by(EVSES.c.connector_id)
        )
        stored = [tuple(row) for row in rows]
    assert stored == [(1, "Charging", NOW), (2, "Occupied", NOW + timedelta(seconds=1))]


def _transaction(conn: Connection, transaction_id: str, *, state: str = "Started") -> int:
    txn = TxnRow(
        charger_id="K1",
        transaction_id=transaction_id,
        ocpp_version="1.6",
        evse_id=1,
        connector_id=1,
        id_tag="ABCDEF0123456789",
        started_at=NOW,
        state=state,
    )
    stored_transactions.save(conn, txn)
    assert txn.id is not None
    return txn.id


def _rows(*readings: tuple[int, float, str | None]) -> list[dict[str, Any]]:
    samples = [
        Sample(NOW + timedelta(minutes=minute), value, phase=phase)
        for minute, value, phase in readings
    ]
    return sample_rows("K1", None, 1, samples)


async def test_meter_readings_are_stored_once_per_transaction(db: Database) -> None:
    def unit(conn: Connection) -> tuple[int, int]:
        by_id = _transaction(conn, "T-1")
        _transaction(conn, "T-old", state="Ended")
        on_evse = _transaction(conn, "T-2")  # the newest open one on EVSE 1
        batch = Batch(conn)

        def add(transaction_id: str | None, rows: list[dict[str, Any]]) -> None:
            stored_values.add_readings(
                batch, charger_id="K1", transaction_id=transaction_id, evse_id=1, rows=rows
            )

        add("T-1", _rows((1, 100.0, None), (1, 100.0, None), (1, 100.0, "L1")))
        add("T-1", _rows((1, 100.0, None), (2, 200.0, None)))  # the first reading again
        add(None, _rows((1, 100.0, None), (3, 300.0, None)))  # the open transaction's
        add(None, _rows((3, 300.0, None)))
        add("T-unknown", _rows((1, 5.0, None), (1, 5.0, None)))  # no transaction: as sent
        batch.insert_rows()
        return by_id, on_evse

    by_id, on_evse = await db.worker.run(unit)

    def again(conn: Connection) -> None:  # a later group: the stored ones count too
        batch = Batch(conn)
        stored_values.add_readings(
            batch,
            charger_id="K1",
            transaction_id="T-1",
            evse_id=1,
            rows=_rows((2, 200.0, None), (4, 400.0, None)),
        )
        batch.insert_rows()

    await db.worker.run(again)
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(
                METER_VALUES.c.transaction_pk, METER_VALUES.c.value, METER_VALUES.c.phase
            ).order_by(METER_VALUES.c.id)
        )
        stored = [tuple(row) for row in rows]
    assert sorted(stored, key=repr) == sorted(
        [
            (by_id, 100.0, None),
            (by_id, 100.0, "L1"),
            (by_id, 200.0, None),
            (by_id, 400.0, None),
            (on_evse, 100.0, None),
            (on_evse, 300.0, None),
            (None, 5.0, None),
            (None, 5.0, None),
        ],
        key=repr,
    )


async def test_a_transaction_read_brings_the_charger_of_its_order(db: Database) -> None:
    tag = "ABCDEF0123456789"
    order = {
        "id": tag,
        "user_id": 1,
        "charger_id": "K2",
        "status": "started",
        "request_kind": "full",
        "tariff_claim": "{}",
        "limits_claim": "{}",
        "hold_amount": 500,
        "currency": "EUR",
        "start_token": "t",
        "kid": "k",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(minutes=10),
        "created_at": NOW,
        "updated_at": NOW,
    }

    def unit(conn: Connection) -> tuple[Any, ...]:
        _transaction(conn, "T-1")
        no_order = stored_transactions.with_order_charger(
            conn, charger_id="K1", transaction_id="T-1"
        )
        conn.execute(insert(ORDERS).values(order))
        conn.execute(insert(ID_TAGS).values(id_tag="CARD1", status="Blocked", created_at=NOW))
        found = stored_transactions.with_order_charger(conn, charger_id="K1", transaction_id="T-1")
        missing = stored_transactions.with_order_charger(conn, charger_id="K1", transaction_id="X")
        return (
            no_order,
            found,
            missing,
            store_orders.order_and_tag_rows(conn, id_tag=tag),
            store_orders.order_and_tag_rows(conn, id_tag="CARD1"),
            store_orders.order_and_tag_rows(conn, id_tag="NOBODY"),
        )

    no_order, found, missing, order_row, tag_row, nothing = await db.worker.run(unit)
    assert no_order is not None and no_order[1] is None
    assert found is not None and found[1] == "K2" and found[0].transaction_id == "T-1"
    assert found[0] == no_order[0]  # the same row as without an order
    assert missing is None
    assert order_row == (("K2", "started", NOW + timedelta(minutes=10)), None)
    assert tag_row == (None, ("Blocked", None))
    assert nothing == (None, None)


async def test_a_read_ahead_is_served_without_a_statement_of_its_own(db: Database) -> None:
    with statements() as seen:

        def unit(conn: Connection) -> tuple[object, list[str]]:
            _STATUS_OF.ahead(conn, {"cid": "K1"})
            _STATUS_OF.scalar(conn, {"cid": "K2"})  # the read ahead goes with this one
            sent_before = list(seen)
            return _STATUS_OF.scalar(conn, {"cid": "K1"}), sent_before

        status, sent_before = await db.worker.run(unit)
    assert status is None  # a new charger has no status yet
    selects = [s for s in seen if s == "SELECT"]
    assert selects == ["SELECT", "SELECT"]  # PostgreSQL: the ahead and K2's; SQLite: K2's, K1's
    if _is_postgresql(db):
        assert [s for s in sent_before if s == "SELECT"] == ["SELECT", "SELECT"]


async def test_a_write_after_a_read_ahead_makes_the_read_run_again(db: Database) -> None:
    def unit(conn: Connection) -> tuple[object, object]:
        _STATUS_OF.ahead(conn, {"cid": "K1"})
        _STATUS_OF.scalar(conn, {"cid": "K2"})  # the read ahead is sent (and answered) here
        _STATUS.later(conn, {"cid": "K1", "status": "Faulted"})
        kept_after = _STATUS_OF.scalar(conn, {"cid": "K1"})
        _STATUS_OF.ahead(conn, {"cid": "K1"})
        conn.execute(update(CHARGERS).where(CHARGERS.c.id == "K1").values(status="Available"))
        sqlalchemy_after = _STATUS_OF.scalar(conn, {"cid": "K1"})
        return kept_after, sqlalchemy_after

    assert await db.worker.run(unit) == ("Faulted", "Available")


_STATUS_RETURNING = Fast(
    update(CHARGERS)
    .where(CHARGERS.c.id == bindparam("cid"))
    .values(status=bindparam("status"))
    .returning(CHARGERS.c.id)
)


async def test_a_write_with_rows_after_a_read_ahead_makes_the_read_run_again(
    db: Database,
) -> None:
    """An UPDATE .. RETURNING is read like a SELECT (``first``) but writes all the same."""

    def unit(conn: Connection) -> tuple[object, object]:
        _STATUS_OF.ahead(conn, {"cid": "K1"})
        _STATUS_OF.scalar(conn, {"cid": "K2"})  # the read ahead is sent (and answered) here
        changed = _STATUS_RETURNING.first(conn, {"cid": "K1", "status": "Faulted"})
        return changed, _STATUS_OF.scalar(conn, {"cid": "K1"})

    assert await db.worker.run(unit) == (("K1",), "Faulted")


async def test_a_read_ahead_never_used_is_forgotten_at_the_commit(db: Database) -> None:
    def first(conn: Connection) -> None:
        _STATUS_OF.ahead(conn, {"cid": "K1"})
        _STATUS_OF.scalar(conn, {"cid": "K2"})

    await db.worker.run(first)
    async with db.engine.begin() as conn:  # another connection changes the row
        await conn.execute(update(CHARGERS).where(CHARGERS.c.id == "K1").values(status="Faulted"))
    assert await db.worker.run(lambda conn: _STATUS_OF.scalar(conn, {"cid": "K1"})) == "Faulted"


async def test_a_checked_write_fails_its_unit_at_the_next_round_trip(db: Database) -> None:
    """A kept conditional update that matched no row fails the unit where its row count
    comes back: the next statement on PostgreSQL, at once where writes are not kept."""
    reached: list[str] = []

    def unit(conn: Connection) -> object:
        _STATUS.later(conn, {"cid": "K1", "status": "Faulted"}, check=matched_one("K1 gone"))
        _STATUS.later(conn, {"cid": "K9", "status": "Faulted"}, check=matched_one("no K9"))
        reached.append("kept")
        return _STATUS_OF.scalar(conn, {"cid": "K1"})

    with pytest.raises(Conflict, match="no K9"):
        await db.worker.run(unit)
    assert reached == (["kept"] if _is_postgresql(db) else [])
    assert await db.worker.run(lambda conn: _STATUS_OF.scalar(conn, {"cid": "K1"})) is None


async def test_a_checked_write_left_for_the_commit_is_checked_before_it(db: Database) -> None:
    """Sent with the COMMIT in one pipeline, a failing check would be found only after the
    transaction was committed: a kept write with a check goes first, on its own."""
    with statements() as seen:

        def unit(conn: Connection) -> None:
            _STATUS.later(conn, {"cid": "K1", "status": "Faulted"})
            _STATUS.later(conn, {"cid": "K9", "status": "Faulted"}, check=matched_one("no K9"))

        with pytest.raises(Conflict, match="no K9"):
            await db.worker.run(unit)
    assert "COMMIT" not in seen
    assert await db.worker.run(lambda conn: _STATUS_OF.scalar(conn, {"cid": "K1"})) is None

    def matching(conn: Connection) -> None:  # a check that passes: committed as before
        _STATUS.later(conn, {"cid": "K2", "status": "Reserved"}, check=matched_one("no K2"))

    await db.worker.run(matching)
    assert await db.worker.run(lambda conn: _STATUS_OF.scalar(conn, {"cid": "K2"})) == "Reserved"


async def test_a_read_at_the_commit_sees_the_units_writes(db: Database) -> None:
    """``Fast.at_commit``: on PostgreSQL the read goes out with the kept writes and the COMMIT
    (no round trip of its own) and its rows are there once committed."""
    with statements() as seen:

        def unit(conn: Connection) -> Callable[[], list[tuple[Any, ...]]]:
            _STATUS.later(conn, {"cid": "K1", "status": "Faulted"})
            rows = _STATUS_OF.at_commit(conn, {"cid": "K1"})
            if _is_postgresql(db):
                with pytest.raises(RuntimeError, match="before its transaction was committed"):
                    rows()
            return rows

        rows = await db.worker.run(unit)
    assert rows() == [("Faulted",)]
    ours = [s for s in seen if s in ("UPDATE", "SELECT", "COMMIT")]
    assert ours == ["UPDATE", "SELECT"] + (["COMMIT"] if _is_postgresql(db) else [])


_STABLE_STATUS_OF = Fast(
    select(CHARGERS.c.status).where(CHARGERS.c.id == bindparam("cid")), stable=True
)


async def test_a_stable_read_ahead_outlives_the_units_writes(db: Database) -> None:
    """A stable statement's read ahead is served after writes (its answer is one no write of
    the unit changes: here the test breaks that promise on purpose to see which rows come
    back); an ordinary one is read again."""

    def unit(conn: Connection) -> tuple[object, object, list[str]]:
        _STABLE_STATUS_OF.ahead(conn, {"cid": "K1"})
        _STATUS_OF.ahead(conn, {"cid": "K2"})
        _STATUS_OF.scalar(conn, {"cid": "K1"})  # both are sent (and answered) here
        _STATUS.later(conn, {"cid": "K1", "status": "Faulted"})
        _STATUS.later(conn, {"cid": "K2", "status": "Faulted"})
        with statements() as seen:
            stable = _STABLE_STATUS_OF.scalar(conn, {"cid": "K1"})
            ordinary = _STATUS_OF.scalar(conn, {"cid": "K2"})
        return stable, ordinary, seen

    stable, ordinary, seen = await db.worker.run(unit)
    assert ordinary == "Faulted"
    if _is_postgresql(db):  # served from the read made before the write: no statement
        assert (stable, seen) == (None, ["UPDATE", "UPDATE", "SELECT"])
    else:  # nothing is read ahead: both read now
        assert (stable, seen) == ("Faulted", ["SELECT", "SELECT"])


def test_only_a_read_can_be_stable() -> None:
    with pytest.raises(ValueError, match="only a read"):
        Fast(update(CHARGERS).values(status="x"), stable=True)


async def test_a_pipeline_refused_by_the_driver_fails_its_unit_though_the_error_is_caught(
    db: Database,
) -> None:
    """A statement the driver refuses before sending it (PostgreSQL text cannot hold NUL)
    stops the pipeline there: the kept writes queued after it are never sent, and the
    transaction is not aborted on the server. A caller that catches the error (a policy's
    decision answers Invalid on any error) must not let the unit commit without them: its
    commit raises the error (it committed K1's write and dropped K2's, silently)."""

    def unit(conn: Connection) -> None:
        _STATUS.later(conn, {"cid": "K1", "status": "bad\x00"})
        _STATUS.later(conn, {"cid": "K2", "status": "Faulted"})
        with suppress(DBAPIError):  # taken for an answer (a policy's Invalid)
            _STATUS_OF.scalar(conn, {"cid": "K1"})  # its round trip carries the kept writes

    if _is_postgresql(db):
        with pytest.raises(DataError, match="NUL"):
            await db.worker.run(unit)
    else:  # SQLite takes the text: nothing fails
        await db.worker.run(unit)

    def after(conn: Connection) -> list[object]:
        return [_STATUS_OF.scalar(conn, {"cid": c}) for c in ("K1", "K2")]

    stored = await db.worker.run(after)
    assert stored == ([None, None] if _is_postgresql(db) else ["bad\x00", "Faulted"])


async def test_a_callers_own_statement_refused_by_the_driver_is_its_own_error(
    db: Database,
) -> None:
    """The statement that fails on the driver's side is the caller's own (the last of its
    round trip, everything kept before it sent): the error is the caller's as when it ran
    alone, and a caller that takes it as an answer commits the rest."""

    def unit(conn: Connection) -> object:
        _STATUS.later(conn, {"cid": "K1", "status": "Faulted"})
        try:
            return _STATUS_OF.scalar(conn, {"cid": "bad\x00"})
        except DBAPIError:
            return "refused"

    assert await db.worker.run(unit) == ("refused" if _is_postgresql(db) else None)
    assert await db.worker.run(lambda conn: _STATUS_OF.scalar(conn, {"cid": "K1"})) == "Faulted"
