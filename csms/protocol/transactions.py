"""Transactions block: 1.6 Start/StopTransaction and 2.0.1 TransactionEvent, idempotent.

Chargers resend what they queued while offline, sometimes twice, sometimes hours late and
out of order. Nothing here answers with a CALLERROR: a repeated message is found again and
answered as the first time (1.6 start by its fingerprint, 1.6 stop by the transaction's
state, 2.0.1 events by (charger, transactionId, seqNo), all backed by unique constraints), and
whatever looks wrong (unknown tag, unknown transaction, reused order id) is stored and
flagged for the operator instead of refused, because the energy has already been delivered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.context import CsmsContext
from csms.payments import TransactionChange, TransactionFacts
from csms.protocol.authorization import IdTagDecision, looks_like_order_id
from csms.protocol.meter_values import Sample, add_samples, register_at, samples_of
from csms.store.models import MeterValue, Transaction, TransactionEventRecord

LOG = logging.getLogger("csms.transactions")
LATE_AFTER = timedelta(minutes=5)  # a start reported later than this was queued offline
STARTED, ENDED = "Started", "Ended"


@dataclass(frozen=True, slots=True)
class StartRequest:
    connector_id: int
    id_tag: str
    meter_start: int
    timestamp: datetime
    reservation_id: int | None = None


@dataclass(frozen=True, slots=True)
class StartAnswer:
    transaction_id: int
    decision: IdTagDecision


@dataclass(frozen=True, slots=True)
class StopRequest:
    transaction_id: int
    meter_stop: int
    timestamp: datetime
    id_tag: str | None = None
    reason: str | None = None
    samples: Sequence[Sample] = ()


@dataclass(frozen=True, slots=True)
class TransactionEvent:
    """A 2.0.1 TransactionEvent, version-neutral."""

    event_type: str  # Started | Updated | Ended
    timestamp: datetime
    trigger_reason: str
    seq_no: int
    transaction_id: str
    offline: bool = False
    id_token: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    stopped_reason: str | None = None
    samples: Sequence[Sample] = field(default=())


def start_fingerprint(req: StartRequest) -> str:
    """What makes two StartTransactions "the same": connector, tag, time, meter."""
    text = f"{req.connector_id}|{req.id_tag}|{req.timestamp.isoformat()}|{req.meter_start}"
    return hashlib.sha256(text.encode()).hexdigest()


def _add_flag(txn: Transaction, flag: str) -> None:
    flags = [f for f in txn.flags.split(",") if f]
    if flag not in flags:
        txn.flags = ",".join([*flags, flag])[:200]


def facts_of(txn: Transaction) -> TransactionFacts:
    assert txn.id is not None
    return TransactionFacts(
        charger_id=txn.charger_id,
        transaction_id=txn.transaction_id,
        transaction_pk=txn.id,
        id_tag=txn.id_tag,
        evse_id=txn.evse_id,
        started_at=txn.started_at,
        stopped_at=txn.stopped_at,
        meter_start_wh=txn.meter_start_wh,
        meter_stop_wh=txn.meter_stop_wh,
        offline=txn.offline,
        stop_reason=txn.stop_reason,
    )


async def _notify(ctx: CsmsContext, change: TransactionChange, txn: Transaction) -> None:
    try:
        await ctx.sink.on_transaction_event(change, facts_of(txn))
    except Exception:  # the sink's failure must not turn into a CALLERROR
        LOG.exception("%s: settlement sink failed on %s %s", txn.charger_id, change, txn.id)


async def _find(session: AsyncSession, charger_id: str, transaction_id: str) -> Transaction | None:
    rows = await session.exec(
        select(Transaction).where(
            Transaction.charger_id == charger_id, Transaction.transaction_id == transaction_id
        )
    )
    return rows.first()


async def _flag_reused_order(session: AsyncSession, txn: Transaction) -> None:
    """Brief 7.11: a second transaction on one order id is stored and flagged."""
    if txn.id_tag is None or not looks_like_order_id(txn.id_tag):
        return
    rows = await session.exec(
        select(Transaction.id).where(
            Transaction.id_tag == txn.id_tag, col(Transaction.id) != txn.id
        )
    )
    if rows.first() is not None:
        _add_flag(txn, "order_reused")


async def _decide(ctx: CsmsContext, charger_id: str, id_tag: str) -> IdTagDecision:
    try:
        return await ctx.authorization.authorize(charger_id, id_tag)
    except Exception:
        LOG.exception("%s: authorization policy failed for %s", charger_id, id_tag)
        return IdTagDecision("Invalid", known=False)


# --- 1.6 ------------------------------------------------------------------------------------


async def start_transaction(ctx: CsmsContext, charger_id: str, req: StartRequest) -> StartAnswer:
    """1.6 StartTransaction: the CSMS assigns the integer id; a repeat gets the same one."""
    key = start_fingerprint(req)
    decision = await _decide(ctx, charger_id, req.id_tag)
    async with ctx.db.session() as session:
        existing = (
            await session.exec(
                select(Transaction).where(
                    Transaction.charger_id == charger_id, Transaction.start_key == key
                )
            )
        ).first()
        if existing is not None:
            return _repeat_answer(existing, decision)
        now = ctx.clock()
        txn = Transaction(
            charger_id=charger_id,
            transaction_id=f"new-{uuid.uuid4().hex}",
            ocpp_version="1.6",
            evse_id=req.connector_id,
            connector_id=req.connector_id,
            id_tag=req.id_tag,
            id_tag_status=decision.status,
            start_key=key,
            started_at=req.timestamp,
            meter_start_wh=req.meter_start,
            offline=req.timestamp < now - LATE_AFTER,
            created_at=now,
            updated_at=now,
        )
        if txn.offline:
            _add_flag(txn, "late_start")
        if not decision.known:
            _add_flag(txn, "unknown_tag")
        session.add(txn)
        try:
            await session.flush()
            txn.transaction_id = str(txn.id)
            await _flag_reused_order(session, txn)
            session.add(txn)
            await session.commit()
        except IntegrityError:  # the same start raced in on another connection
            await session.rollback()
            again = (
                await session.exec(
                    select(Transaction).where(
                        Transaction.charger_id == charger_id, Transaction.start_key == key
                    )
                )
            ).first()
            if again is None:
                raise
            return _repeat_answer(again, decision)
    await _notify(ctx, "started", txn)
    assert txn.id is not None
    return StartAnswer(txn.id, decision)


def _repeat_answer(txn: Transaction, decision: IdTagDecision) -> StartAnswer:
    status = txn.id_tag_status or decision.status
    return StartAnswer(int(txn.transaction_id), IdTagDecision(status, decision.expiry))


async def stop_transaction(
    ctx: CsmsContext, charger_id: str, req: StopRequest
) -> IdTagDecision | None:
    """1.6 StopTransaction; a repeat (transaction already ended) changes nothing."""
    decision = await _decide(ctx, charger_id, req.id_tag) if req.id_tag else None
    now = ctx.clock()
    async with ctx.db.session() as session:
        txn = await _find(session, charger_id, str(req.transaction_id))
        if txn is None:
            txn = await _find(session, charger_id, f"unknown-{req.transaction_id}")
        if txn is not None and txn.state == ENDED:
            return decision
        if txn is None:
            txn = Transaction(
                charger_id=charger_id,
                transaction_id=f"unknown-{req.transaction_id}",
                ocpp_version="1.6",
                id_tag=req.id_tag,
                created_at=now,
            )
            _add_flag(txn, "unknown_transaction")
        txn.state = ENDED
        txn.stopped_at = req.timestamp
        txn.meter_stop_wh = req.meter_stop
        txn.stop_reason = req.reason or "Local"
        txn.updated_at = now
        if txn.meter_start_wh is not None and req.meter_stop < txn.meter_start_wh:
            _add_flag(txn, "meter_decreased")
        session.add(txn)
        try:
            await session.flush()
            add_samples(
                session,
                charger_id=charger_id,
                transaction_pk=txn.id,
                evse_id=txn.evse_id,
                samples=req.samples,
            )
            await session.commit()
        except IntegrityError:  # a concurrent copy stored it first
            await session.rollback()
            return decision
    await _notify(ctx, "ended", txn)
    return decision


# --- 2.0.1 ----------------------------------------------------------------------------------


def _encode_answer(decision: IdTagDecision | None) -> str:
    if decision is None:
        return "{}"
    expiry = decision.expiry.isoformat() if decision.expiry else None
    return json.dumps({"status": decision.status, "expiry": expiry})


def _decode_answer(text: str) -> IdTagDecision | None:
    data = json.loads(text)
    if not data:
        return None
    expiry = datetime.fromisoformat(data["expiry"]) if data.get("expiry") else None
    return IdTagDecision(data["status"], expiry)


async def _stored_answer(
    session: AsyncSession, charger_id: str, ev: TransactionEvent
) -> TransactionEventRecord | None:
    rows = await session.exec(
        select(TransactionEventRecord).where(
            TransactionEventRecord.charger_id == charger_id,
            TransactionEventRecord.transaction_id == ev.transaction_id,
            TransactionEventRecord.seq_no == ev.seq_no,
        )
    )
    return rows.first()


def _apply_event(txn: Transaction, ev: TransactionEvent, decision: IdTagDecision | None) -> None:
    if ev.evse_id is not None:
        txn.evse_id = ev.evse_id
    if ev.connector_id is not None:
        txn.connector_id = ev.connector_id
    if ev.id_token is not None and txn.id_tag is None:
        txn.id_tag = ev.id_token
    if decision is not None:
        txn.id_tag_status = decision.status
        if not decision.known:
            _add_flag(txn, "unknown_tag")
    txn.offline = txn.offline or ev.offline
    txn.last_seq_no = max(ev.seq_no, txn.last_seq_no or 0)
    if ev.event_type == STARTED or txn.started_at is None or ev.timestamp < txn.started_at:
        txn.started_at = (
            ev.timestamp if txn.started_at is None else min(txn.started_at, ev.timestamp)
        )
    begin = register_at(ev.samples, last=False, context="Transaction.Begin")
    if begin is not None and (ev.event_type == STARTED or txn.meter_start_wh is None):
        txn.meter_start_wh = begin
    if ev.event_type == ENDED:
        txn.state = ENDED
        txn.stopped_at = ev.timestamp
        txn.stop_reason = ev.stopped_reason or "Local"
        end = register_at(ev.samples, last=True, context="Transaction.End")
        if end is not None:
            txn.meter_stop_wh = end


async def transaction_event(
    ctx: CsmsContext, charger_id: str, ev: TransactionEvent
) -> IdTagDecision | None:
    """2.0.1 TransactionEvent: stored once per seqNo; the answer's idTokenInfo (or None)."""
    async with ctx.db.session() as session:
        stored = await _stored_answer(session, charger_id, ev)
    if stored is not None:
        return _decode_answer(stored.response)
    decision = await _decide(ctx, charger_id, ev.id_token) if ev.id_token else None
    now = ctx.clock()
    async with ctx.db.session() as session:
        txn = await _find(session, charger_id, ev.transaction_id)
        created = txn is None
        if txn is None:
            txn = Transaction(
                charger_id=charger_id,
                transaction_id=ev.transaction_id,
                ocpp_version="2.0.1",
                created_at=now,
            )
            if ev.event_type != STARTED:
                _add_flag(txn, "no_started_event")
        _apply_event(txn, ev, decision)
        txn.updated_at = now
        session.add(txn)
        session.add(
            TransactionEventRecord(
                charger_id=charger_id,
                transaction_id=ev.transaction_id,
                seq_no=ev.seq_no,
                event_type=ev.event_type,
                trigger_reason=ev.trigger_reason,
                timestamp=ev.timestamp,
                offline=ev.offline,
                response=_encode_answer(decision),
                received_at=now,
            )
        )
        try:
            await session.flush()
            if created:
                await _flag_reused_order(session, txn)
            add_samples(
                session,
                charger_id=charger_id,
                transaction_pk=txn.id,
                evse_id=txn.evse_id,
                samples=ev.samples,
            )
            if ev.event_type == ENDED and txn.meter_stop_wh is None and txn.id is not None:
                await session.flush()
                txn.meter_stop_wh = register_at(
                    [_as_sample(m) for m in await samples_of(session, txn.id)], last=True
                )
            await session.commit()
        except IntegrityError:  # a concurrent copy of this event won
            await session.rollback()
            async with ctx.db.session() as again:
                stored = await _stored_answer(again, charger_id, ev)
            return _decode_answer(stored.response) if stored else decision
    change: TransactionChange = (
        "ended" if ev.event_type == ENDED else "started" if created else "updated"
    )
    await _notify(ctx, change, txn)
    return decision


def _as_sample(row: MeterValue) -> Sample:
    return Sample(row.timestamp, row.value, row.measurand, row.phase, row.unit, row.context)
