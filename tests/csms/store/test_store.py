"""The store and the transaction blocks on SQLite and PostgreSQL, without sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DataError, OperationalError
from sqlmodel import col, func, select

from csms.commands import ConnectionRegistry, LocalDispatcher
from csms.context import CsmsContext
from csms.id_tags import LocalTagPolicy
from csms.keys import KeyManager
from csms.passwords import PasswordVerifier
from csms.ports import IdTagDecision, StoreOnlySink
from csms.protocol import commands as ocpp_commands
from csms.protocol import data_transfer, meter_values, transactions
from csms.protocol.meter_values import Sample
from csms.store import chargers as store
from csms.store.db import Database, migrate
from csms.store.message_log import MessageLogWriter, recent_frames
from csms.store.models import (
    Charger,
    ChargerSync,
    Evse,
    IdTag,
    MeterValue,
    Transaction,
    TransactionEventRecord,
)
from csms.store.models_orders import Order
from csms.store.writer import StoreWriter

from ..conftest import make_settings
from ..round_trips import round_trips

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
async def ctx(db_url: str, tmp_path: Path) -> AsyncIterator[CsmsContext]:
    db = Database.connect(db_url)
    await migrate(db.engine)
    settings = make_settings(tmp_path, message_log_limit=10)
    registry = ConnectionRegistry()

    def clock() -> datetime:
        return NOW

    context = CsmsContext(
        settings=settings,
        db=db,
        keys=KeyManager.open(tmp_path / "keys", now=0, prepublish_s=60, token_lifetime_s=60),
        registry=registry,
        dispatcher=LocalDispatcher(registry, timeout_s=1, codec=ocpp_commands),
        passwords=PasswordVerifier(),
        authorization=LocalTagPolicy(db, clock=clock),
        sink=StoreOnlySink(),
        message_log=MessageLogWriter(db, limit=10, clock=clock),
        writer=StoreWriter(db),
        clock=clock,
    )
    async with db.session() as session:
        await store.create_charger(session, charger_id="S1", password_hash=None, evses=2, now=NOW)
        session.add(IdTag(id_tag="RFID", created_at=NOW))
        await session.commit()
    try:
        yield context
    finally:
        await db.dispose()


async def _count(ctx: CsmsContext, model: type, *where: object) -> int:
    async with ctx.db.session() as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)  # type: ignore[arg-type]
        return int((await session.exec(query)).one())


async def test_time_is_aware_utc_and_status_ordering(ctx: CsmsContext) -> None:
    async with ctx.db.session() as session:
        for status, at in (("Charging", NOW), ("Available", NOW - timedelta(hours=1))):
            await store.upsert_evse_status(
                session,
                charger_id="S1",
                evse_id=1,
                connector_id=1,
                status=status,
                error_code=None,
                at=at,
            )
    async with ctx.db.session() as session:
        evses = await store.evses_of(session, "S1")
        charger = await store.get_charger(session, "S1")
    assert [(e.evse_id, e.status) for e in evses] == [(1, "Charging"), (2, "Unknown")]
    assert evses[0].updated_at == NOW and evses[0].updated_at.tzinfo is not None
    assert charger is not None and charger.created_at == NOW


async def test_repeated_start_concurrently_is_stored_once(ctx: CsmsContext) -> None:
    req = transactions.StartRequest(connector_id=1, id_tag="RFID", meter_start=10, timestamp=NOW)
    answers = await asyncio.gather(
        *(transactions.start_transaction(ctx, "S1", req) for _ in range(4))
    )
    assert len({a.transaction_id for a in answers}) == 1
    assert {a.decision.status for a in answers} == {"Accepted"}
    assert await _count(ctx, Transaction) == 1
    stop = transactions.StopRequest(
        transaction_id=answers[0].transaction_id,
        meter_stop=50,
        timestamp=NOW,
        samples=[Sample(NOW, 50.0)],
    )
    await transactions.stop_transaction(ctx, "S1", stop)
    await transactions.stop_transaction(ctx, "S1", stop)
    assert await _count(ctx, MeterValue) == 1


async def test_transaction_event_concurrent_duplicates(ctx: CsmsContext) -> None:
    ev = transactions.TransactionEvent(
        event_type="Started",
        timestamp=NOW,
        trigger_reason="Authorized",
        seq_no=0,
        transaction_id="T-1",
        id_token="RFID",
        evse_id=1,
        samples=[Sample(NOW, 7.0, context="Transaction.Begin")],
    )
    answers = await asyncio.gather(
        *(transactions.transaction_event(ctx, "S1", ev) for _ in range(3))
    )
    assert {a.status if a else None for a in answers} == {"Accepted"}
    assert await _count(ctx, TransactionEventRecord) == 1
    assert await _count(ctx, MeterValue) == 1
    async with ctx.db.session() as session:
        (txn,) = (await session.exec(select(Transaction))).all()
    assert txn.meter_start_wh == 7 and txn.state == "Started"


def _order_row(order_id: str) -> Order:
    """An order row as the payment side stores it (only its id matters here)."""
    return Order(
        id=order_id,
        user_id=1,
        charger_id="S1",
        evse_id=1,
        request_kind="amount",
        request_value=1000,
        tariff_claim="[]",
        limits_claim="[1000]",
        hold_amount=1000,
        currency="CNY",
        start_token="x.y.z",
        kid="k",
        issued_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
    )


async def test_reused_order_id_is_flagged(ctx: CsmsContext) -> None:
    """Only a tag that names an existing order is an order id: a card UID of the same shape
    (``04A1B2C3``) used twice is an ordinary tag."""
    async with ctx.db.session() as session:
        session.add(_order_row("ORDER77"))
        await session.commit()
    for minute in (0, 30):
        for tag in ("ORDER77", "04A1B2C3"):
            req = transactions.StartRequest(
                connector_id=1,
                id_tag=tag,
                meter_start=minute,
                timestamp=NOW - timedelta(minutes=minute),
            )
            await transactions.start_transaction(ctx, "S1", req)
    async with ctx.db.session() as session:
        rows = (await session.exec(select(Transaction).order_by(col(Transaction.id)))).all()
    assert [r.id_tag for r in rows] == ["ORDER77", "04A1B2C3"] * 2
    assert ["order_reused" in r.flags for r in rows] == [False, False, True, False]
    assert all("unknown_tag" in r.flags for r in rows)
    assert rows[2].offline and "late_start" in rows[2].flags


async def test_reused_order_id_is_flagged_201(ctx: CsmsContext) -> None:
    """2.0.1: the tag may first come with a later event than the Started."""
    async with ctx.db.session() as session:
        session.add(_order_row("ORDER78"))
        await session.commit()
    for txn, tag in (("T-1", "ORDER78"), ("T-2", "04A1B2C3"), ("T-3", "04A1B2C3")):
        ev = transactions.TransactionEvent(
            event_type="Started", timestamp=NOW, trigger_reason="Authorized", seq_no=0,
            transaction_id=txn, id_token=tag, evse_id=1,
        )  # fmt: skip
        await transactions.transaction_event(ctx, "S1", ev)
    for seq_no, tag in ((0, None), (1, "ORDER78")):
        ev = transactions.TransactionEvent(
            event_type="Started" if seq_no == 0 else "Updated", timestamp=NOW,
            trigger_reason="Authorized", seq_no=seq_no, transaction_id="T-4", id_token=tag,
        )  # fmt: skip
        await transactions.transaction_event(ctx, "S1", ev)
    async with ctx.db.session() as session:
        rows = (await session.exec(select(Transaction).order_by(col(Transaction.id)))).all()
    assert [(r.transaction_id, r.id_tag) for r in rows] == [
        ("T-1", "ORDER78"), ("T-2", "04A1B2C3"), ("T-3", "04A1B2C3"), ("T-4", "ORDER78"),
    ]  # fmt: skip
    assert ["order_reused" in r.flags for r in rows] == [False, False, False, True]


async def test_message_log_is_bounded_per_charger(ctx: CsmsContext) -> None:
    for n in range(25):
        ctx.message_log.record("S1", "in", f'[2,"{n}","Heartbeat",{{}}]')
    ctx.message_log.record("S2", "out", '[3,"x",{}]')
    await ctx.message_log.flush()
    for n in range(25, 28):
        ctx.message_log.record("S1", "in", f'[2,"{n}","Heartbeat",{{}}]')
    await ctx.message_log.flush()
    async with ctx.db.session() as session:
        frames = await recent_frames(session, "S1", 100)
    assert [f.frame.split('"')[1] for f in frames] == [str(n) for n in range(18, 28)]
    assert await _count(ctx, Charger) == 1  # the log does not need a charger row


async def test_synced_keeps_the_last_seq(ctx: CsmsContext) -> None:
    for seq in (3, 5):
        await data_transfer.data_transfer(
            ctx, "S1", vendor_id="org.qrcharge", message_id="Synced", data=f'{{"seq": {seq}}}'
        )
    async with ctx.db.session() as session:
        sync = await session.get(ChargerSync, "S1")
    assert sync is not None and sync.last_seq == 5


async def test_synced_is_stored_without_a_pooled_session(
    ctx: CsmsContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store writer stores it (one upsert in its group): under load the async pool ran
    out, and a Synced was an ORM session of its own there."""

    def no_session(_db: Database) -> None:
        raise AssertionError("a Synced asked the async pool for a session")

    monkeypatch.setattr(Database, "session", no_session)
    answer = await data_transfer.data_transfer(
        ctx, "S1", vendor_id="org.qrcharge", message_id="Synced", data='{"seq": 7}'
    )
    assert answer.status == "Accepted"
    monkeypatch.undo()
    async with ctx.db.session() as session:
        sync = await session.get(ChargerSync, "S1")
    assert sync is not None and sync.last_seq == 7


async def test_delete_charger_cascades(ctx: CsmsContext) -> None:
    req = transactions.StartRequest(connector_id=1, id_tag="RFID", meter_start=0, timestamp=NOW)
    await transactions.start_transaction(ctx, "S1", req)
    async with ctx.db.session() as session:
        assert await store.delete_charger(session, charger_id="S1")
    assert await _count(ctx, Transaction) == 0
    assert await _count(ctx, Evse) == 0


async def test_local_tags_are_read_on_the_reader_thread(ctx: CsmsContext) -> None:
    async with ctx.db.session() as session:
        session.add(IdTag(id_tag="BLOCKED1", status="Blocked", created_at=NOW))
        session.add(IdTag(id_tag="OLD1", expiry=NOW - timedelta(minutes=1), created_at=NOW))
        session.add(IdTag(id_tag="LATER1", expiry=NOW + timedelta(days=1), created_at=NOW))
        await session.commit()
    policy = ctx.authorization
    assert (await policy.authorize("S1", "RFID")).status == "Accepted"
    assert (await policy.authorize("S1", "BLOCKED1")).status == "Blocked"
    expired = await policy.authorize("S1", "OLD1")
    assert expired.status == "Expired" and expired.expiry == NOW - timedelta(minutes=1)
    later = await policy.authorize("S1", "LATER1")
    assert later.accepted and later.expiry == NOW + timedelta(days=1)
    assert later.expiry is not None and later.expiry.tzinfo is not None
    unknown = await policy.authorize("S1", "NOBODY")
    assert unknown.status == "Invalid" and not unknown.known
    assert ctx.db.reader.units >= 5


async def test_message_log_prunes_many_chargers_in_chunks(ctx: CsmsContext) -> None:
    chargers = [f"P{n}" for n in range(250)]  # more than one prune transaction
    for n in range(12):
        for charger_id in chargers:
            ctx.message_log.record(charger_id, "in", f'[2,"{n}","Heartbeat",{{}}]')
    units_before = ctx.db.background.units
    await ctx.message_log.flush()
    assert ctx.db.background.units - units_before >= 4  # insert + 3 chunks of <= 100
    async with ctx.db.session() as session:
        for charger_id in ("P0", "P120", "P249"):
            frames = await recent_frames(session, charger_id, 100)
            assert [f.frame for f in frames] == [
                f'[2,"{n}","Heartbeat",{{}}]' for n in range(2, 12)
            ]


def test_the_hot_paths_transaction_row_has_every_column() -> None:
    from dataclasses import fields

    from csms.store.transactions import TRANSACTIONS, TxnRow

    assert {f.name for f in fields(TxnRow)} == {c.name for c in TRANSACTIONS.columns}


class _RecordingSink:
    def __init__(self) -> None:
        self.changes: list[tuple[str, str | None]] = []

    async def on_settlement(self, charger_id: str, token: str, source: str) -> None: ...

    async def on_synced(self, charger_id: str, seq: int) -> None: ...

    async def on_transaction_event(self, change: str, facts: Any) -> None:
        self.changes.append((change, facts.id_tag))


async def test_only_transactions_of_known_orders_reach_the_sink(ctx: CsmsContext) -> None:
    from dataclasses import replace

    from csms.store.models_orders import Order

    sink = _RecordingSink()
    ctx = replace(ctx, sink=sink)
    async with ctx.db.session() as session:
        session.add(
            Order(
                id="ORDERX1", user_id=1, charger_id="S1", request_kind="energy",
                tariff_claim="[]", limits_claim="[]", hold_amount=100, currency="EUR",
                start_token="t", kid="k", issued_at=NOW, expires_at=NOW + timedelta(hours=1),
            )
        )  # fmt: skip
        await session.commit()
    for n, tag in enumerate(("RFID", "NOSUCHORDER", "ORDERX1")):
        start = transactions.StartRequest(
            connector_id=1, id_tag=tag, meter_start=0, timestamp=NOW + timedelta(seconds=n)
        )
        answer = await transactions.start_transaction(ctx, "S1", start)
        stop = transactions.StopRequest(
            transaction_id=answer.transaction_id, meter_stop=10, timestamp=NOW
        )
        await transactions.stop_transaction(ctx, "S1", stop)
    ended = transactions.TransactionEvent(
        event_type="Ended", timestamp=NOW, trigger_reason="StopAuthorized", seq_no=0,
        transaction_id="T201", id_token="ORDERX1",
    )  # fmt: skip
    await transactions.transaction_event(ctx, "S1", ended)
    assert sink.changes == [("started", "ORDERX1"), ("ended", "ORDERX1"), ("ended", "ORDERX1")]


async def test_an_ended_event_reads_the_samples_queued_in_its_own_group(ctx: CsmsContext) -> None:
    def event(kind: str, seq: int, samples: list[Sample]) -> transactions.TransactionEvent:
        return transactions.TransactionEvent(
            event_type=kind, timestamp=NOW + timedelta(minutes=seq), trigger_reason="x",
            seq_no=seq, transaction_id="G1", evse_id=1, samples=samples,
        )  # fmt: skip

    started = event("Started", 0, [Sample(NOW, 100.0, context="Transaction.Begin")])
    await transactions.transaction_event(ctx, "S1", started)
    writer = asyncio.create_task(ctx.writer.run())
    await asyncio.sleep(0)
    try:
        groups = ctx.writer.groups
        updated = event("Updated", 1, [Sample(NOW + timedelta(minutes=1), 600.0)])
        ended = event("Ended", 2, [])  # no end register: taken from the stored samples
        await asyncio.gather(
            transactions.transaction_event(ctx, "S1", updated),
            transactions.transaction_event(ctx, "S1", ended),
        )
        assert ctx.writer.groups == groups + 1  # both in one group
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    async with ctx.db.session() as session:
        txn = (
            await session.exec(select(Transaction).where(Transaction.transaction_id == "G1"))
        ).one()
    assert (txn.meter_start_wh, txn.meter_stop_wh, txn.state) == (100, 600, "Ended")


async def test_order_policy_reads_order_and_local_tag_in_one_hop(ctx: CsmsContext) -> None:
    from csms.payments.order_policy import OrderAuthorizationPolicy

    async with ctx.db.session() as session:
        session.add(IdTag(id_tag="CARD0001", created_at=NOW))  # looks like an order id
        session.add(IdTag(id_tag="CARD0002", status="Blocked", created_at=NOW))
        await session.commit()
    local = LocalTagPolicy(ctx.db, clock=ctx.clock)
    policy = OrderAuthorizationPolicy(ctx.db, clock=ctx.clock, leeway_s=60, fallback=local)
    hops = ctx.db.reader.units
    assert (await policy.authorize("S1", "CARD0001")).status == "Accepted"
    assert (await policy.authorize("S1", "CARD0002")).status == "Blocked"
    nobody = await policy.authorize("S1", "CARD0003")
    assert nobody.status == "Invalid" and not nobody.known
    assert ctx.db.reader.units - hops == 3  # one hop each, order and tag together


async def test_periodic_prune_waits_until_a_charger_grew_by_a_tenth(ctx: CsmsContext) -> None:
    log = MessageLogWriter(ctx.db, limit=100, clock=ctx.clock, gather_s=0.0, prune_every_s=0.0)

    async def count(charger_id: str) -> int:
        async with ctx.db.session() as session:
            return len(await recent_frames(session, charger_id, 1000))

    async def write_and_prune(n: int) -> None:
        for i in range(n):
            log.record("PB", "in", f'[2,"{i}","Heartbeat",{{}}]')
        batch = [log._queue.get_nowait() for _ in range(n)]
        await log._write(batch, prune=True)  # what the task does when a prune is due

    for i in range(105):
        log.record("PB", "in", f'[2,"{i}","Heartbeat",{{}}]')
    await log.flush()  # a read: everyone is pruned
    assert await count("PB") == 100
    await write_and_prune(5)  # grew by 5 < 10: left for later
    assert await count("PB") == 105
    await write_and_prune(5)  # 10 since its last prune: pruned
    assert await count("PB") == 100


async def _start_and_stop(
    ctx: CsmsContext, start_tag: str, stop_tag: str
) -> tuple[transactions.StartAnswer, IdTagDecision | None]:
    """A 1.6 start, its repeat (same answer) and its stop with ``stop_tag``."""
    start = transactions.StartRequest(
        connector_id=1, id_tag=start_tag, meter_start=0, timestamp=NOW
    )
    answer = await transactions.start_transaction(ctx, "S1", start)
    again = await transactions.start_transaction(ctx, "S1", start)
    assert (again.transaction_id, again.decision) == (answer.transaction_id, answer.decision)
    stop = transactions.StopRequest(
        transaction_id=answer.transaction_id, meter_stop=9, timestamp=NOW, id_tag=stop_tag
    )
    return answer, await transactions.stop_transaction(ctx, "S1", stop)


def _started_event(transaction_id: str, id_token: str) -> transactions.TransactionEvent:
    return transactions.TransactionEvent(
        event_type="Started",
        timestamp=NOW,
        trigger_reason="Authorized",
        seq_no=0,
        transaction_id=transaction_id,
        id_token=id_token,
        evse_id=2,
    )


async def test_starts_stops_and_events_decide_inside_the_writers_unit(ctx: CsmsContext) -> None:
    async with ctx.db.session() as session:
        session.add(IdTag(id_tag="BLOCKED2", status="Blocked", created_at=NOW))
        await session.commit()
    reader_hops = ctx.db.reader.units
    answer, stopped = await _start_and_stop(ctx, "RFID", "BLOCKED2")
    assert answer.decision.status == "Accepted"
    assert stopped is not None and stopped.status == "Blocked"
    decided = await transactions.transaction_event(ctx, "S1", _started_event("T-INLINE", "NOBODY"))
    assert decided is not None and decided.status == "Invalid"
    assert ctx.db.reader.units == reader_hops  # no hop of their own
    async with ctx.db.session() as session:
        row = (
            await session.exec(select(Transaction).where(Transaction.transaction_id == "T-INLINE"))
        ).one()
    assert row.id_tag_status == "Invalid"


class _AskedApart:
    """A policy without ``authorize_in``: asked before the writer's unit, as before D21."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def authorize(self, charger_id: str, id_tag: str) -> IdTagDecision:
        self.asked.append(id_tag)
        return IdTagDecision("Blocked" if id_tag == "B" else "Accepted")


async def test_a_policy_without_an_inline_decision_is_asked_apart(ctx: CsmsContext) -> None:
    policy = _AskedApart()
    apart = dataclasses.replace(ctx, authorization=policy)
    answer, stopped = await _start_and_stop(apart, "A", "B")
    assert answer.decision.status == "Accepted"
    assert stopped is not None and stopped.status == "Blocked"
    event = _started_event("T-APART", "B")
    first = await transactions.transaction_event(apart, "S1", event)
    repeat = await transactions.transaction_event(apart, "S1", event)
    assert first is not None and repeat is not None and first.status == repeat.status == "Blocked"
    # the repeated start asked again (a 1.6 start has no stored answer); the repeated event not
    assert policy.asked == ["A", "A", "B", "B"]


def _ended_event(
    transaction_id: str, seq_no: int, wh: float, id_token: str | None = None
) -> transactions.TransactionEvent:
    return transactions.TransactionEvent(
        event_type="Ended",
        timestamp=NOW + timedelta(minutes=20),
        trigger_reason="EVDeparted",
        seq_no=seq_no,
        transaction_id=transaction_id,
        id_token=id_token,
        stopped_reason="EVDisconnected",
        samples=[Sample(NOW + timedelta(minutes=20), wh, context="Transaction.End")],
    )


async def test_a_different_event_under_a_used_seq_no_is_processed_and_flagged(
    ctx: CsmsContext, caplog: pytest.LogCaptureFixture
) -> None:
    """An Ended under the Started's seqNo ends the transaction (flagged, logged once); its
    copies, concurrent or later, are retransmissions: stored once, answered alike."""
    caplog.set_level(logging.WARNING, logger="csms.transactions")
    started = _started_event("T-SEQ", "RFID")
    first = await transactions.transaction_event(ctx, "S1", started)
    ended = _ended_event("T-SEQ", 0, 900.0)
    answers = await asyncio.gather(
        *(transactions.transaction_event(ctx, "S1", ended) for _ in range(3))
    )
    again = await transactions.transaction_event(ctx, "S1", ended)
    repeat = await transactions.transaction_event(ctx, "S1", started)
    assert first is not None and first.status == "Accepted" and repeat == first
    assert answers == [None, None, None] and again is None
    async with ctx.db.session() as session:
        (txn,) = (await session.exec(select(Transaction))).all()
        events = (await session.exec(select(TransactionEventRecord))).all()
    assert (txn.state, txn.stop_reason, txn.meter_stop_wh) == ("Ended", "EVDisconnected", 900)
    assert txn.flags == "seq_no_reused"
    assert sorted((e.seq_no, e.event_type) for e in events) == [(0, "Ended"), (0, "Started")]
    assert all(len(e.digest) == 64 for e in events)
    assert await _count(ctx, MeterValue) == 1
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "S1" in warning.getMessage() and "T-SEQ" in warning.getMessage()
    assert "seqNo 0" in warning.getMessage()


async def test_a_reused_seq_no_with_a_policy_asked_apart(ctx: CsmsContext) -> None:
    """The reader's repeat check before asking the policy tells a different event from a
    retransmission too: the different one is decided and processed, the copy is not."""
    policy = _AskedApart()
    apart = dataclasses.replace(ctx, authorization=policy)
    await transactions.transaction_event(apart, "S1", _started_event("T-AP", "A"))
    ended = _ended_event("T-AP", 0, 50.0, id_token="B")
    decided = await transactions.transaction_event(apart, "S1", ended)
    copy = await transactions.transaction_event(apart, "S1", ended)
    assert decided is not None and copy == decided and decided.status == "Blocked"
    assert policy.asked == ["A", "B"]
    async with ctx.db.session() as session:
        (txn,) = (await session.exec(select(Transaction))).all()
    assert txn.state == "Ended" and txn.flags == "seq_no_reused"


async def test_in_order_events_skip_the_read_of_their_seq_no(
    ctx: CsmsContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A seqNo above the transaction's last one cannot be stored yet: no read of the events
    under it. A repeat, a late event and a reused seqNo are still read and found."""
    reads: list[int] = []
    real = transactions.earlier

    def counted(conn: Any, charger_id: str, ev: Any, digest: str) -> Any:
        reads.append(ev.seq_no)
        return real(conn, charger_id, ev, digest)

    monkeypatch.setattr(transactions, "earlier", counted)

    def event(seq_no: int, kind: str = "Updated", reason: str = "MeterValuePeriodic") -> Any:
        return transactions.TransactionEvent(
            event_type=kind, timestamp=NOW + timedelta(minutes=seq_no), trigger_reason=reason,
            seq_no=seq_no, transaction_id="T-ORDER", id_token="RFID" if seq_no == 0 else None,
            evse_id=1, samples=[Sample(NOW + timedelta(minutes=seq_no), 10.0 * seq_no)],
        )  # fmt: skip

    first = await transactions.transaction_event(ctx, "S1", event(0, "Started", "Authorized"))
    await transactions.transaction_event(ctx, "S1", event(2))
    assert reads == []  # new transaction, then a seqNo above the last
    again = await transactions.transaction_event(ctx, "S1", event(0, "Started", "Authorized"))
    assert reads == [0] and again == first  # a retransmission: answered as the first time
    await transactions.transaction_event(ctx, "S1", event(1))  # late, below the last: read
    assert reads == [0, 1]
    await transactions.transaction_event(ctx, "S1", event(2, "Ended", "EVDeparted"))  # reused
    assert reads == [0, 1, 2]
    await transactions.transaction_event(ctx, "S1", event(3))
    assert reads == [0, 1, 2]
    assert await _count(ctx, TransactionEventRecord) == 5
    async with ctx.db.session() as session:
        txn = (
            await session.exec(select(Transaction).where(Transaction.transaction_id == "T-ORDER"))
        ).one()
    assert txn.last_seq_no == 3 and "seq_no_reused" in txn.flags and txn.state == "Ended"


async def test_a_transactions_messages_keep_their_round_trip_budget(
    ctx: CsmsContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a transaction message's unit sends what it will read about its tag (the
    tag's row, the charger of an order the tag may name) with its first read, and its
    transaction's update and its 2.0.1 event as kept writes with the commit (D110): a start
    is its decision, the new row's insert and the commit; a stop or an update its read and
    the commit. Each was one to three round trips more."""
    postgresql = ctx.db.engine.dialect.name == "postgresql"
    tag = "04A1B2C3"  # the shape of an order id: its order's charger is read too
    warm = transactions.StartRequest(connector_id=2, id_tag=tag, meter_start=0, timestamp=NOW)
    await transactions.start_transaction(ctx, "S1", warm)  # the connection's first statements
    trips = []
    with round_trips(monkeypatch) as seen:
        start = transactions.StartRequest(
            connector_id=1, id_tag=tag, meter_start=10, timestamp=NOW
        )  # fmt: skip
        started = await transactions.start_transaction(ctx, "S1", start)
        trips.append(seen.count)
        stop = transactions.StopRequest(
            transaction_id=started.transaction_id, meter_stop=20, timestamp=NOW, id_tag=tag
        )
        await transactions.stop_transaction(ctx, "S1", stop)
        trips.append(seen.count - sum(trips))
        for seq_no, event_type, token in ((0, "Started", tag), (1, "Updated", None)):
            ev = transactions.TransactionEvent(
                event_type=event_type, timestamp=NOW, trigger_reason="Authorized",
                seq_no=seq_no, transaction_id="T-9", id_token=token, evse_id=1,
            )  # fmt: skip
            await transactions.transaction_event(ctx, "S1", ev)
            trips.append(seen.count - sum(trips))
    assert trips == ([3, 2, 3, 2] if postgresql else [0, 0, 0, 0])
    async with ctx.db.session() as session:
        rows = (await session.exec(select(Transaction).order_by(col(Transaction.id)))).all()
    assert [(r.state, r.id_tag, r.meter_stop_wh) for r in rows] == [
        ("Started", tag, None),
        ("Ended", tag, 20),
        ("Started", tag, None),
    ]
    async with ctx.db.session() as session:
        count = select(func.count()).select_from(TransactionEventRecord)
        assert (await session.exec(count)).one() == 2


async def _chargers_of_one_lane(ctx: CsmsContext, count: int) -> list[str]:
    """``count`` new chargers whose operations go to the writer lane of S1 (one group)."""
    lane = ctx.writer._lane("S1")
    ids = [c for c in (f"L{n}" for n in range(200)) if ctx.writer._lane(c) is lane][:count]
    async with ctx.db.session() as session:
        for charger_id in ids:
            await store.create_charger(
                session, charger_id=charger_id, password_hash=None, evses=2, now=NOW
            )
    return ids


async def test_a_tag_the_database_refuses_fails_only_its_own_message_in_a_group(
    ctx: CsmsContext,
) -> None:
    """A charger's idTag holding NUL (valid JSON, but PostgreSQL text cannot hold it; the
    driver refuses it before sending) is that message's problem only: as when it ran alone, its
    stop is stored and answered Invalid. Its read was queued ahead with the group's other
    reads, before another charger's meter values: their round trip failed inside a third
    charger's decision, which answered a known tag Invalid and stored it so, and the meter
    values, never sent, were lost, the group committing (D111)."""
    meter, starter, stopper = await _chargers_of_one_lane(ctx, 3)
    first = transactions.StartRequest(connector_id=1, id_tag="RFID", meter_start=0, timestamp=NOW)
    opened = await transactions.start_transaction(ctx, stopper, first)
    task = asyncio.create_task(ctx.writer.run())
    await asyncio.sleep(0)
    try:
        stop = transactions.StopRequest(
            transaction_id=opened.transaction_id, meter_stop=9, timestamp=NOW, id_tag="R\x00"
        )
        start = transactions.StartRequest(
            connector_id=1, id_tag="RFID", meter_start=0, timestamp=NOW
        )  # fmt: skip
        # queued in one turn of the loop: one group
        _, started, stopped = await asyncio.gather(
            meter_values.meter_values(
                ctx, meter, evse_id=1, transaction_id=None, samples=[Sample(NOW, 5.0)]
            ),
            transactions.start_transaction(ctx, starter, start),
            transactions.stop_transaction(ctx, stopper, stop),
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert started.decision.status == "Accepted"
    assert stopped is not None and stopped.status == "Invalid"
    assert await _count(ctx, MeterValue, col(MeterValue.charger_id) == meter) == 1
    async with ctx.db.session() as session:
        rows = (await session.exec(select(Transaction).order_by(col(Transaction.id)))).all()
    assert [(r.charger_id, r.state, r.id_tag_status) for r in rows] == [
        (stopper, "Ended", "Accepted"),
        (starter, "Started", "Accepted"),
    ]


async def test_a_kept_write_the_database_refuses_fails_its_own_message_not_anothers(
    ctx: CsmsContext,
) -> None:
    """A 2.0.1 meter value whose unit holds NUL is a kept write that the driver refuses when
    the group's next round trip sends it, here inside another charger's decision (its tag's
    read): that charger's start is still Accepted, and the meter values are answered with
    their error, not stored. The decision took the error for the policy's and answered
    Invalid, the group committed without the meter value, and its charger was told it was
    stored."""
    meter, starter = await _chargers_of_one_lane(ctx, 2)
    task = asyncio.create_task(ctx.writer.run())
    await asyncio.sleep(0)
    try:
        start = transactions.StartRequest(
            connector_id=1, id_tag="RFID", meter_start=0, timestamp=NOW
        )  # fmt: skip
        # queued in one turn of the loop: one group
        stored, started = await asyncio.gather(
            meter_values.meter_values(
                ctx, meter, evse_id=1, transaction_id=None,
                samples=[Sample(NOW, 5.0, unit="Wh\x00")],
            ),
            transactions.start_transaction(ctx, starter, start),
            return_exceptions=True,
        )  # fmt: skip
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert isinstance(started, transactions.StartAnswer)
    assert started.decision.status == "Accepted"
    postgresql = ctx.db.engine.dialect.name == "postgresql"
    assert isinstance(stored, DataError) if postgresql else stored is None
    assert await _count(ctx, MeterValue) == (0 if postgresql else 1)


class _FailingPolicy:
    """A policy deciding inside the unit of work that fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def authorize(self, charger_id: str, id_tag: str) -> IdTagDecision:
        raise self.error

    def authorize_in(self, conn: object, charger_id: str, id_tag: str) -> IdTagDecision:
        raise self.error


async def test_a_database_error_in_the_decision_fails_the_message_not_the_tag(
    ctx: CsmsContext,
) -> None:
    """A policy that fails answers Invalid, but a database error inside it is the unit's: the
    message fails (the charger sends it again) instead of storing the tag as refused in a
    transaction the server may have aborted."""
    start = transactions.StartRequest(connector_id=1, id_tag="TAG1", meter_start=0, timestamp=NOW)
    gone = OperationalError("SELECT", {}, Exception("server closed the connection"))
    with pytest.raises(OperationalError):
        await transactions.start_transaction(
            dataclasses.replace(ctx, authorization=_FailingPolicy(gone)), "S1", start
        )
    policy_bug = dataclasses.replace(ctx, authorization=_FailingPolicy(RuntimeError("bug")))
    answer = await transactions.start_transaction(policy_bug, "S1", start)
    assert answer.decision.status == "Invalid"
    async with ctx.db.session() as session:
        rows = (await session.exec(select(Transaction))).all()
    assert [(r.id_tag, r.id_tag_status) for r in rows] == [("TAG1", "Invalid")]
