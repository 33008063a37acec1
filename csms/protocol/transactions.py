"""Transactions block: 1.6 Start/StopTransaction and 2.0.1 TransactionEvent, idempotent.

Chargers resend what they queued while offline, sometimes twice, sometimes hours late and
out of order. Nothing here answers with a CALLERROR: a repeated message is found again and
answered as the first time (1.6 start by its fingerprint, 1.6 stop by the transaction's
state, 2.0.1 events by (charger, transactionId, seqNo) and their content, all backed by unique
constraints), and whatever looks wrong (unknown tag, unknown transaction, reused order id,
another charger's order id, a seqNo reused for a different event) is stored and flagged for
the operator instead of refused, because the energy has already been delivered.

An order id concerns only the charger the order was issued for: there a second transaction
with it is ``order_reused``, and its transactions go to the settlement sink. A transaction
of any other charger with that id is flagged ``foreign_order`` on that charger's side only:
it neither counts as a use of the order nor reaches the payment side.

Every step of a transaction's state goes through the table of
:mod:`csms.protocol.transaction_lifecycle`; its flags are set here.

A sink that offers :class:`~csms.ports.InlineStarts` marks the order of a start or an update
started inside the unit of work that stores the transaction (one commit for both); anything
else it cannot settle there, and every end, is told to it after the commit. It is told again
by every repeat of a message of an order's transaction (it is idempotent): a CSMS that stopped
between the commit and the sink, or a sink that failed, left the charger without an answer or
with a CALLERROR, and the charger's resend then completes the billing. The sink's failure on
an end is therefore a CALLERROR (the charger sends it again); on a start or an update it is
only logged, because the end tells the sink everything again, and a 1.6 start the charger
gives up on would cost it the transaction's later messages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from csms.context import CsmsContext
from csms.ports import (
    IdTagDecision,
    InlineAhead,
    InlineDecider,
    InlineStarts,
    TransactionChange,
    TransactionFacts,
    inline_ahead,
    inline_decider,
    inline_starts,
    may_be_order_id,
)
from csms.protocol.meter_values import Sample, register_at, sample_rows
from csms.protocol.retransmission import Earlier, earlier, event_digest
from csms.protocol.transaction_lifecycle import TxnEvent, TxnState, next_state
from csms.store import meter_values as stored_values
from csms.store import transactions as store
from csms.store.transactions import TxnRow
from csms.store.writer import Batch

LOG = logging.getLogger("csms.transactions")
LATE_AFTER = timedelta(minutes=5)  # a start reported later than this was queued offline
SEQ_NO_REUSED = "seq_no_reused"  # the flag of a different 2.0.1 event under a used seqNo
ORDER_REUSED = "order_reused"  # a second transaction of a charger on its own order
FOREIGN_ORDER = "foreign_order"  # a transaction with another charger's order id


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


def _add_flag(txn: TxnRow, flag: str) -> None:
    flags = [f for f in txn.flags.split(",") if f]
    if flag not in flags:
        txn.flags = ",".join([*flags, flag])[:200]


def facts_of(txn: TxnRow) -> TransactionFacts:
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


def _order_charger(conn: Connection, id_tag: str | None) -> str | None:
    """The charger of the order whose id is ``id_tag``, or None when it names no order (one
    primary-key read; a tag without the shape of an order id needs none). Only transactions
    on their order's own charger are handed to the settlement sink (the others cannot concern
    it; asking it per transaction cost a unit of work in the database thread each) or
    flagged ``order_reused``: RFID card UIDs have the same shape, and a card is used
    for many sessions."""
    if id_tag is None or not may_be_order_id(id_tag):
        return None
    return store.order_charger(conn, order_id=id_tag)


_UNREAD = "\x00unread"  # the order's charger is not known yet: read it


def _owner(conn: Connection, txn: TxnRow, owner: str | None) -> str | None:
    """The charger of the order ``txn``'s tag names (``owner`` when it was read with the
    row, else read now), or None."""
    if owner == _UNREAD:
        return _order_charger(conn, txn.id_tag)
    return owner if txn.id_tag is not None and may_be_order_id(txn.id_tag) else None


def _is_own_order(conn: Connection, txn: TxnRow, owner: str | None = _UNREAD) -> bool:
    """Whether ``txn``'s tag is an order of ``txn``'s charger; a transaction with another
    charger's order id is flagged ``foreign_order`` (and nothing else happens to it).
    ``owner``: the charger of the order the tag names, when it was read with the row."""
    owner = _owner(conn, txn, owner)
    if owner is not None and owner != txn.charger_id:
        _add_flag(txn, FOREIGN_ORDER)
    return owner is not None and owner == txn.charger_id


async def _notify(ctx: CsmsContext, change: TransactionChange, txn: TxnRow) -> None:
    """Tells the sink; its failure on an end is raised (a CALLERROR), else logged."""
    try:
        await ctx.sink.on_transaction_event(change, facts_of(txn))
    except Exception:
        LOG.exception("%s: settlement sink failed on %s %s", txn.charger_id, change, txn.id)
        if change == "ended":
            raise


def _started_in(conn: Connection, starts: InlineStarts | None, txn: TxnRow) -> bool:
    """Whether the sink marked the order of ``txn`` (stored, on its order's own charger)
    started inside this unit of work (:class:`~csms.ports.InlineStarts`); never for an end,
    which the sink is always told of (it bills)."""
    if starts is None or txn.state == TxnState.ENDED:
        return False
    return starts.started_in(conn, facts_of(txn))


async def _told(
    ctx: CsmsContext, starts: InlineStarts | None, change: TransactionChange, txn: TxnRow,
    marked: bool,
) -> None:  # fmt: skip
    """After the commit: a start the sink marked in the unit (``marked``, by ``starts``) is
    remembered by it, anything else is told to it (:func:`_notify`)."""
    if marked and starts is not None:
        starts.started_stored(facts_of(txn))
        return
    await _notify(ctx, change, txn)


def _change_of(txn: TxnRow) -> TransactionChange:
    """What a repeat tells the sink: the transaction as it is stored now."""
    return "ended" if txn.state == TxnState.ENDED else "updated"


def _flag_reused_order(conn: Connection, txn: TxnRow) -> bool:
    """A second transaction on one order id is stored and flagged (True if so).
    Only for a stored ``txn`` on its order's own charger (:func:`_is_own_order`), judged
    among that charger's transactions: another charger cannot make it look reused."""
    assert txn.id_tag is not None
    other = store.another_with_tag(conn, charger_id=txn.charger_id, id_tag=txn.id_tag, pk=txn.id)
    if not other or ORDER_REUSED in txn.flags.split(","):
        return False
    _add_flag(txn, ORDER_REUSED)
    return True


def _add_samples(batch: Batch, txn: TxnRow, samples: Sequence[Sample]) -> None:
    """Queued for the group's one insert of meter values (see :class:`Batch`)."""
    stored_values.add(batch, sample_rows(txn.charger_id, txn.id, txn.evse_id, samples))


NO_TAG = IdTagDecision("Invalid", known=False)


async def _decide(ctx: CsmsContext, charger_id: str, id_tag: str) -> IdTagDecision:
    try:
        return await ctx.authorization.authorize(charger_id, id_tag)
    except Exception:
        LOG.exception("%s: authorization policy failed for %s", charger_id, id_tag)
        return NO_TAG


async def _decision_before(
    ctx: CsmsContext, charger_id: str, id_tag: str | None
) -> tuple[IdTagDecision | None, InlineDecider | None]:
    """``(decision, None)`` asked of the policy now, or ``(None, decider)`` when the policy
    decides inside the writer's unit of work instead (see :func:`_decide_in`)."""
    if not id_tag:
        return None, None
    decider = inline_decider(ctx.authorization)
    if decider is not None:
        return None, decider
    return await _decide(ctx, charger_id, id_tag), None


def _tag_reads_ahead(conn: Connection, ahead: InlineAhead | None, id_tag: str | None) -> None:
    """Queues what the unit will read about ``id_tag`` (the policy's decision when it is made
    in the unit, the charger of the order the tag may name) with its first round trip."""
    if not id_tag:
        return
    if ahead is not None:
        ahead(conn, id_tag)
    if may_be_order_id(id_tag):
        store.order_charger_ahead(conn, order_id=id_tag)


def _decide_in(
    conn: Connection, decider: InlineDecider | None, charger_id: str, id_tag: str | None
) -> IdTagDecision | None:
    """The policy's decision inside the unit of work (``decider`` from :func:`_decision_before`);
    a policy that fails answers Invalid, as :func:`_decide` does. A database error is the
    unit's, not the policy's: it is raised (the charger is answered InternalError and sends
    again), since the transaction it leaves behind must not be committed as if the tag had
    been refused."""
    if decider is None or not id_tag:
        return None
    if "\x00" in id_tag:  # no tag the database can hold (nor read: the driver refuses it)
        return NO_TAG
    try:
        return decider(conn, charger_id, id_tag)
    except DBAPIError:
        raise
    except Exception:
        LOG.exception("%s: authorization policy failed for %s", charger_id, id_tag)
        return NO_TAG


# --- 1.6 ------------------------------------------------------------------------------------


async def start_transaction(ctx: CsmsContext, charger_id: str, req: StartRequest) -> StartAnswer:
    """1.6 StartTransaction: the CSMS assigns the integer id; a repeat gets the same one."""
    key = start_fingerprint(req)
    asked, decider = await _decision_before(ctx, charger_id, req.id_tag)
    ahead = inline_ahead(ctx.authorization) if decider is not None else None
    starts = inline_starts(ctx.sink)
    now = ctx.clock()

    def op(batch: Batch) -> tuple[TxnRow, bool, bool, IdTagDecision, bool]:
        # the repeat check's read goes with the decision's round trip (when it has one)
        store.by_start_key_ahead(batch.conn, charger_id=charger_id, start_key=key)
        _tag_reads_ahead(batch.conn, ahead, req.id_tag)
        # the 1.6 schema lets the id tag be empty: no tag the CSMS knows, so Invalid
        decision = asked or _decide_in(batch.conn, decider, charger_id, req.id_tag) or NO_TAG
        existing = store.by_start_key(batch.conn, charger_id=charger_id, start_key=key)
        if existing is not None:  # the same start again
            next_state(existing.state, TxnEvent.REPEAT)
            own = _order_charger(batch.conn, existing.id_tag) == charger_id
            return existing, False, own, decision, own and _started_in(batch.conn, starts, existing)
        txn = TxnRow(
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
            state=next_state(TxnState.UNSEEN, TxnEvent.START).value,
            offline=req.timestamp < now - LATE_AFTER,
            created_at=now,
            updated_at=now,
        )
        if txn.offline:
            _add_flag(txn, "late_start")
        if not decision.known:
            _add_flag(txn, "unknown_tag")
        is_order = _is_own_order(batch.conn, txn)
        store.save(batch.conn, txn)
        txn.transaction_id = str(txn.id)
        if is_order:
            _flag_reused_order(batch.conn, txn)
        store.save(batch.conn, txn)
        return txn, True, is_order, decision, is_order and _started_in(batch.conn, starts, txn)

    def again(batch: Batch) -> tuple[TxnRow | None, IdTagDecision | None]:
        found = store.by_start_key(batch.conn, charger_id=charger_id, start_key=key)
        return found, asked or _decide_in(batch.conn, decider, charger_id, req.id_tag) or NO_TAG

    try:
        txn, created, is_order, decision, marked = await ctx.writer.execute(op, charger_id)
    except IntegrityError:  # the same start raced in on another connection (or process)
        found, decision_again = await ctx.writer.execute(again, charger_id)
        if found is None or decision_again is None:
            raise
        return _repeat_answer(found, decision_again)
    if is_order:
        await _told(ctx, starts, "started" if created else _change_of(txn), txn, marked)
    if not created:
        return _repeat_answer(txn, decision)
    assert txn.id is not None
    return StartAnswer(txn.id, decision)


def _repeat_answer(txn: TxnRow, decision: IdTagDecision) -> StartAnswer:
    status = txn.id_tag_status or decision.status
    return StartAnswer(int(txn.transaction_id), IdTagDecision(status, decision.expiry))


async def stop_transaction(
    ctx: CsmsContext, charger_id: str, req: StopRequest
) -> IdTagDecision | None:
    """1.6 StopTransaction; a repeat (transaction already ended) changes nothing."""
    asked, decider = await _decision_before(ctx, charger_id, req.id_tag)
    ahead = inline_ahead(ctx.authorization) if decider is not None else None
    decided: list[IdTagDecision | None] = [asked]  # made in the unit of work when inline
    now = ctx.clock()

    def op(batch: Batch) -> tuple[TxnRow, bool]:
        conn = batch.conn
        # the transaction's read goes with the decision's round trip (when it has one)
        store.with_order_charger_ahead(
            conn, charger_id=charger_id, transaction_id=str(req.transaction_id)
        )
        _tag_reads_ahead(conn, ahead, req.id_tag)
        decided[0] = asked or _decide_in(conn, decider, charger_id, req.id_tag)
        found = store.with_order_charger(
            conn, charger_id=charger_id, transaction_id=str(req.transaction_id)
        ) or store.with_order_charger(
            conn, charger_id=charger_id, transaction_id=f"unknown-{req.transaction_id}"
        )
        txn, owner = (None, _UNREAD) if found is None else found
        if txn is not None and txn.state == TxnState.ENDED:  # a repeat: nothing to store
            next_state(txn.state, TxnEvent.REPEAT)
            return txn, _owner(conn, txn, owner) == charger_id
        before = TxnState.UNSEEN if txn is None else txn.state
        if txn is None:
            txn = TxnRow(
                charger_id=charger_id,
                transaction_id=f"unknown-{req.transaction_id}",
                ocpp_version="1.6",
                id_tag=req.id_tag,
                created_at=now,
                updated_at=now,
            )
            _add_flag(txn, "unknown_transaction")
        txn.state = next_state(before, TxnEvent.STOP).value
        txn.stopped_at = req.timestamp
        txn.meter_stop_wh = req.meter_stop
        txn.stop_reason = req.reason or "Local"
        txn.updated_at = now
        if txn.meter_start_wh is not None and req.meter_stop < txn.meter_start_wh:
            _add_flag(txn, "meter_decreased")
        is_order = _is_own_order(conn, txn, owner)
        store.save(conn, txn)
        _add_samples(batch, txn, req.samples)
        return txn, is_order

    try:
        txn, is_order = await ctx.writer.execute(op, charger_id)
    except IntegrityError:  # a concurrent copy stored it first (the op ran: decided is set)
        return decided[0]
    if is_order:
        await _notify(ctx, "ended", txn)
    return decided[0]


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


def _apply_event(
    txn: TxnRow, before: str, ev: TransactionEvent, decision: IdTagDecision | None
) -> None:
    """Applies a new event to ``txn``, whose state was ``before`` (Unseen if just created)."""
    txn.state = next_state(before, ev.event_type).value
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
    started = ev.event_type == TxnEvent.STARTED
    if started or txn.started_at is None or ev.timestamp < txn.started_at:
        txn.started_at = (
            ev.timestamp if txn.started_at is None else min(txn.started_at, ev.timestamp)
        )
    begin = register_at(ev.samples, last=False, context="Transaction.Begin")
    if begin is not None and (started or txn.meter_start_wh is None):
        txn.meter_start_wh = begin
    if ev.event_type == TxnEvent.ENDED:
        txn.stopped_at = ev.timestamp
        txn.stop_reason = ev.stopped_reason or "Local"
        end = register_at(ev.samples, last=True, context="Transaction.End")
        if end is not None:
            txn.meter_stop_wh = end


@dataclass(slots=True)
class _Stored:
    """What the unit of work of one TransactionEvent did."""

    txn: TxnRow | None = None  # a retransmission: its order's transaction, else None
    answer: str | None = None  # a retransmission: the answer given the first time
    created: bool = False
    is_order: bool = False
    decision: IdTagDecision | None = None
    reused: Sequence[str] = ()  # the types of the other events under a reused seqNo
    marked: bool = False  # the sink marked its order started in the unit (:func:`_started_in`)


async def transaction_event(
    ctx: CsmsContext, charger_id: str, ev: TransactionEvent
) -> IdTagDecision | None:
    """2.0.1 TransactionEvent; the answer's idTokenInfo (or None). A retransmission is
    answered from the store; a different event under a used seqNo is processed like any
    other, flagged ``seq_no_reused`` and logged (:mod:`csms.protocol.retransmission`)."""
    digest = event_digest(ev)
    asked: IdTagDecision | None = None
    decider = inline_decider(ctx.authorization) if ev.id_token else None
    if ev.id_token and decider is None:
        # a repeat is answered as the first time, without asking the policy again: a read on
        # the reader thread, not a turn of the writer (the write re-checks anyway)
        seen = await ctx.db.reader.run(earlier, charger_id, ev, digest)
        if seen.answer is not None:
            repeated = await ctx.db.reader.run(_order_transaction, charger_id, ev.transaction_id)
            if repeated is not None:
                await _notify(ctx, _change_of(repeated), repeated)
            return _decode_answer(seen.answer)
        asked = await _decide(ctx, charger_id, ev.id_token)
    decided: list[IdTagDecision | None] = [asked]  # made in the unit of work when inline
    ahead = inline_ahead(ctx.authorization) if decider is not None else None
    starts = inline_starts(ctx.sink)
    now = ctx.clock()

    def op(batch: Batch) -> _Stored:
        conn = batch.conn
        _tag_reads_ahead(conn, ahead, ev.id_token)  # they go with the transaction's read
        found = store.with_order_charger(
            conn, charger_id=charger_id, transaction_id=ev.transaction_id
        )
        seen = earlier(conn, charger_id, ev, digest) if _may_be_stored(found, ev) else NOT_SEEN
        if seen.answer is not None:
            assert found is not None  # an event is stored with its transaction
            txn, owner = found
            if _owner(conn, txn, owner) != charger_id:
                return _Stored(None, seen.answer)
            marked = _started_in(conn, starts, txn)
            return _Stored(txn, seen.answer, is_order=True, marked=marked)
        # after the repeat check: a repeat is never decided again
        decision = decided[0] = asked or _decide_in(conn, decider, charger_id, ev.id_token)
        stored = _store_event(batch, charger_id, ev, digest, decision, seen.others, now, found)
        if stored.is_order and stored.txn is not None:
            stored.marked = _started_in(conn, starts, stored.txn)
        return stored

    def again(batch: Batch) -> str | None:
        return earlier(batch.conn, charger_id, ev, digest).answer

    try:
        stored = await ctx.writer.execute(op, charger_id)
    except IntegrityError:  # a concurrent copy of this event won
        answer = await ctx.writer.execute(again, charger_id)
        return _decode_answer(answer) if answer else decided[0]
    if stored.answer is not None:
        if stored.txn is not None:
            await _told(ctx, starts, _change_of(stored.txn), stored.txn, stored.marked)
        return _decode_answer(stored.answer)
    assert stored.txn is not None
    if stored.reused:
        LOG.warning(
            "%s: transaction %s: seqNo %d reused by a different %s event (already stored "
            "under it: %s); processed and flagged %s",
            charger_id, ev.transaction_id, ev.seq_no, ev.event_type,
            ", ".join(stored.reused), SEQ_NO_REUSED,
        )  # fmt: skip
    change: TransactionChange = (
        "ended" if ev.event_type == TxnEvent.ENDED else "started" if stored.created else "updated"
    )
    if stored.is_order:
        await _told(ctx, starts, change, stored.txn, stored.marked)
    return stored.decision


NOT_SEEN = Earlier()  # nothing stored under the event's seqNo


def _may_be_stored(found: tuple[TxnRow, str | None] | None, ev: TransactionEvent) -> bool:
    """Whether an event may already be stored under ``ev``'s seqNo, from its transaction's row
    (``found``, read anyway): each event is stored in the unit of work that creates or updates
    its transaction and raises ``last_seq_no`` to at least its seqNo, so with no row, or a
    seqNo above ``last_seq_no``, there is none, and the in-order event (nearly every one)
    skips the read of :func:`~csms.protocol.retransmission.earlier`. A row without
    ``last_seq_no`` (none was ever stored with it) is read as before. A copy racing in on
    another connection still meets the unique constraint (the caller's IntegrityError)."""
    if found is None:
        return False
    last = found[0].last_seq_no
    return last is None or ev.seq_no <= last


def _store_event(
    batch: Batch,
    charger_id: str,
    ev: TransactionEvent,
    digest: str,
    decision: IdTagDecision | None,
    reused: Sequence[str],
    now: datetime,
    found: tuple[TxnRow, str | None] | None,
) -> _Stored:
    """Applies a new event to its transaction (``found`` with its order's charger, or created
    if None) and stores the event with its answer; ``reused``: the other events already under
    its seqNo (flagged)."""
    conn = batch.conn
    txn, owner = (None, _UNREAD) if found is None else found
    created = txn is None
    tag_before = None if txn is None else txn.id_tag
    before = TxnState.UNSEEN if txn is None else txn.state
    if txn is None:
        txn = TxnRow(
            charger_id=charger_id,
            transaction_id=ev.transaction_id,
            ocpp_version="2.0.1",
            created_at=now,
        )
        if ev.event_type != TxnEvent.STARTED:
            _add_flag(txn, "no_started_event")
    if reused:
        _add_flag(txn, SEQ_NO_REUSED)
    _apply_event(txn, before, ev, decision)
    txn.updated_at = now
    store.save(conn, txn)
    store.insert_event(
        conn,
        charger_id=charger_id,
        transaction_id=ev.transaction_id,
        seq_no=ev.seq_no,
        event_type=ev.event_type,
        trigger_reason=ev.trigger_reason,
        timestamp=ev.timestamp,
        offline=ev.offline,
        response=_encode_answer(decision),
        received_at=now,
        digest=digest,
    )
    # the tag is known from the first event that names it (usually the Started)
    flags_before = txn.flags
    is_order = _is_own_order(conn, txn, owner if txn.id_tag == tag_before else _UNREAD)
    changed = txn.flags != flags_before
    if is_order and txn.id_tag != tag_before:
        changed = _flag_reused_order(conn, txn) or changed
    _add_samples(batch, txn, ev.samples)
    if ev.event_type == TxnEvent.ENDED and txn.meter_stop_wh is None and txn.id is not None:
        batch.insert_rows()  # the group's queued samples (this one's too) are read back
        txn.meter_stop_wh = register_at(_stored_samples(conn, txn.id), last=True)
        changed = True
    if changed:
        store.save(conn, txn)
    return _Stored(txn, None, created, is_order, decision, reused)


def _order_transaction(conn: Connection, charger_id: str, transaction_id: str) -> TxnRow | None:
    """The stored transaction when its tag is an order's (what a repeat tells the sink)."""
    txn = store.by_transaction_id(conn, charger_id=charger_id, transaction_id=transaction_id)
    return txn if txn is not None and _order_charger(conn, txn.id_tag) == charger_id else None


def _stored_samples(conn: Connection, transaction_pk: int) -> list[Sample]:
    return [
        Sample(*row) for row in stored_values.in_time_order(conn, transaction_pk=transaction_pk)
    ]
