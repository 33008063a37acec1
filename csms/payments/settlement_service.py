"""The settlement sink: every copy of a transaction settles its order once.

A session of an order reaches the CSMS as an uploaded settlement, as the charger's DataTransfer
``Settlement`` and as OCPP transaction messages, each possibly repeated, late or out of order.
All of them land on one :class:`SettlementRecord` per session:

* a signed settlement is found again by ``(charger_id, txn)``; an OCPP transaction by its row
  id; a copy of the other kind attaches to the order's session that lacks it (matched by
  transaction id on 2.0.1, by order and EVSE on 1.6, where the CSMS assigns the id);
* session 1 of an order is billed: one :class:`Payment` per order (unique in the database),
  pending until captured, its amount revised while new evidence arrives; a later session on
  the same order is stored and flagged, never charged automatically (a start token is for
  one session);
* the signed amount pays; when the OCPP meter disagrees on the energy, the lower of the signed
  amount and the OCPP-metered cost is charged and the order flagged; OCPP data alone
  bills from the meter with the order's snapshot tariff.

Whichever way it arrives, a token is read once (:func:`read_received`) and that reading is
what :meth:`SettlementService.receive` verifies, keeps in ``settlement_inbox`` (once per token,
in the same unit of work; a charger's token also when it is refused) and stores as evidence
when refused.

Refused settlements are stored as evidence (``settlement_rejections``, one row per distinct
refusal with its repeats counted: :mod:`csms.payments.rejections`), never raised into OCPP.
Each copy is one unit of work in the database thread
(:func:`~csms.store.units_of_work.in_worker`: synchronous, one hop from the event loop, the
ES256 verification inside it, next to the key it reads), and its retry resolves every race.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.engine import Connection
from sqlmodel import Session

from config.logs import bind
from config.settings import Settings
from csms import metrics
from csms.payments.billing_rules import bill, compatible, mark_started, ocpp_cost
from csms.payments.lifecycle import OrderState, PaymentState
from csms.payments.order_errors import SettlementRefused
from csms.payments.orders import snapshot
from csms.payments.rejections import Named, rejection_values
from csms.ports import SettlementSource, TransactionChange, TransactionFacts, may_be_order_id
from csms.store import orders as store_orders
from csms.store import settlements as store_settlements
from csms.store.db import Database
from csms.store.models_orders import ORDER_ID_MAX, Order, Payment, SettlementRecord
from csms.store.rejections import store_rejection
from csms.store.units_of_work import Conflict, in_worker
from qr_extension import jws
from qr_extension.errors import KeyFormatError
from qr_extension.keys import PublicKey
from qr_extension.refusal import Reason, Refusal
from qr_extension.settlement import (
    Settlement,
    check_settlement,
    parse_settlement,
    peek_parsed,
    verify_parsed_settlement,
)
from qr_extension.tariff import usage_to_claim

LOG = logging.getLogger("csms.settlements")
KEY_CACHE_SIZE = 4096  # parsed charger keys kept per service
STARTED_MEMO_SIZE = 65536  # orders known started per service (cleared when full)


@dataclass(frozen=True, slots=True)
class SettlementOutcome:
    """Where a copy landed: its session record, the order, the order's payment (if billed)."""

    record: SettlementRecord
    order: Order
    payment: Payment | None
    duplicate: bool
    flagged: bool | None = None  # the order has a flag; None: not read (only uploads read it)


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True, slots=True)
class Received:
    """A settlement token as it arrived, read once (:func:`read_received`): its verification,
    its inbox row and the evidence of its refusal all take this value, never the text again.

    ``parsed`` is None when the token cannot be read, and ``refusal`` then says why; it also
    refuses a token sent over OCPP that names another charger than its sender (``charger_id``).
    ``named`` is what the token states, NOT verified: it picks the key and the rows.
    """

    text: str
    sha256: str
    source: SettlementSource
    charger_id: str | None  # the charger that sent it; None for an upload
    parsed: jws.Parsed | None
    named: Named
    refusal: Refusal | None


def read_received(
    token: str, *, source: SettlementSource, charger_id: str | None = None
) -> Received:
    """Reads a received token once (:func:`parse_settlement`, :func:`peek_parsed`)."""
    text = token.strip()
    # a lone surrogate (valid JSON, no text) must hash, and be refused as malformed below
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    parsed = parse_settlement(text)
    if isinstance(parsed, Refusal):
        return Received(text, digest, source, charger_id, None, Named(), parsed)
    peeked = peek_parsed(parsed)
    if isinstance(peeked, Refusal):
        refusal: Refusal | None = peeked
    elif charger_id is not None and peeked[0] != charger_id:
        refusal = Refusal(Reason.WRONG_ISSUER, f"iss {peeked[0]!r} sent by {charger_id!r}")
    else:
        refusal = None
    return Received(text, digest, source, charger_id, parsed, Named.of(parsed), refusal)


class SettlementService:
    """The :class:`~csms.ports.SettlementSink` of the payment side, and the one entry of a
    received settlement however it arrives (:meth:`receive`)."""

    def __init__(self, db: Database, *, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._keys: dict[str, PublicKey] = {}
        # (order id, charger) of the orders this process saw stored started: a start or an
        # update of their transaction has nothing left to do (see on_transaction_event)
        self._started: set[tuple[str, str]] = set()
        self._settings = settings
        self._clock = clock

    # --- the sink -------------------------------------------------------------------------

    async def on_settlement(
        self, charger_id: str, token: str, source: SettlementSource
    ) -> Refusal | None:
        """Takes a charger's settlement: None once it is kept (a refusal of it as evidence,
        logged); the refusal of one that cannot be read or names another charger, which is not
        taken. Any other failure (the database) is raised, so that the charger is not told
        Accepted and sends it again."""
        received = read_received(token, source=source, charger_id=charger_id)
        try:
            await self.receive(received)
        except SettlementRefused as exc:
            LOG.warning("%s: settlement refused: %s", charger_id, exc)
        return received.refusal

    async def on_synced(self, charger_id: str, seq: int) -> None:
        """Nothing to do now: the reaper reads ``charger_sync`` (an unused order's hold is
        released only once its charger has synced)."""
        return None

    async def on_transaction_event(
        self, change: TransactionChange, facts: TransactionFacts
    ) -> None:
        """Bills the order whose id is the transaction's tag; a tag that names no order (an
        RFID card, whatever its shape) finds none and changes nothing.

        A start or an update only marks the order started (:func:`mark_started`), which does
        nothing once the order has left ``created`` with its ``started_at`` set, and no step
        returns it there: an order this process saw so after a commit is remembered, and the
        start's repeats and the updates of its transaction then cost no unit of work (they
        were one per event). The end always runs (it bills), and forgets the order."""
        if facts.id_tag is None or not may_be_order_id(facts.id_tag):
            return
        key = (facts.id_tag, facts.charger_id)
        if change != "ended" and key in self._started:
            return
        started = await in_worker(self._db, lambda s: self._transaction(s, change, facts))
        if change == "ended":
            self._started.discard(key)
        elif started:
            self.started_stored(facts)

    def started_in(self, conn: Connection, facts: TransactionFacts) -> bool:
        """:class:`~csms.ports.InlineStarts`: in the store writer's unit that stores a start
        or an update of the transaction, the order goes created -> started (one conditional
        update), or is found started already. False for an order in any other state without
        ``started_at`` (cancelling, expired...): :meth:`on_transaction_event` then does what
        :func:`mark_started` does there (its flags), after the commit."""
        assert facts.id_tag is not None
        if (facts.id_tag, facts.charger_id) in self._started:
            return True  # remembered after an earlier commit: nothing can un-start it
        now = self._clock()
        order_id, at = facts.id_tag, facts.started_at or now
        if store_orders.start_created(
            conn, order_id=order_id, charger_id=facts.charger_id, at=at, now=now
        ):
            return True
        state = store_orders.start_state(conn, order_id=order_id)
        return state is not None and state[0] != OrderState.CREATED and state[1] is not None

    def started_stored(self, facts: TransactionFacts) -> None:
        """The unit whose :meth:`started_in` said True committed: the order is remembered."""
        assert facts.id_tag is not None
        if len(self._started) >= STARTED_MEMO_SIZE:
            self._started.clear()
        self._started.add((facts.id_tag, facts.charger_id))

    # --- signed settlements -----------------------------------------------------------------

    async def submit(
        self,
        token: str,
        *,
        source: SettlementSource,
        charger_id: str | None = None,
        user_id: int | None = None,
    ) -> SettlementOutcome:
        """:meth:`receive` of a token not read yet."""
        received = read_received(token, source=source, charger_id=charger_id)
        return await self.receive(received, user_id=user_id)

    async def receive(self, received: Received, *, user_id: int | None = None) -> SettlementOutcome:
        """Verifies a received settlement, keeps it in the inbox and settles its order, in one
        transaction; SettlementRefused (stored as evidence, with the uploading driver
        ``user_id``) when it does not verify or match its order. A token sent over OCPP that
        cannot be read or names another charger is refused without evidence: the charger is
        told so."""
        source, now = received.source, self._clock()
        try:
            if received.refusal is not None:
                raise SettlementRefused(received.refusal)
            outcome, flagged = await in_worker(self._db, lambda s: self._settle(s, received, now))
            if flagged is not None:  # read with the unit's commit
                outcome = replace(outcome, flagged=flagged())
        except SettlementRefused as exc:
            metrics.settlement(source, exc.refusal.reason.value)
            if received.source == "upload" or received.refusal is None:
                await self._reject(received, exc.refusal, user_id)
            raise
        metrics.settlement(source, "duplicate" if outcome.duplicate else "recorded")
        with bind(order_id=outcome.order.id, txn=outcome.record.txn):
            LOG.info(
                "settlement from %s %s: charge %s",
                source,
                "matched an earlier copy" if outcome.duplicate else "recorded",
                outcome.record.charge_amount,
            )
        paid = outcome.payment is not None and outcome.payment.status != PaymentState.PENDING
        if source == "upload" and outcome.duplicate and paid:
            replay = Refusal(Reason.REPLAYED, f"order {outcome.order.id} is already paid")
            await self._reject(received, replay, user_id)
            raise SettlementRefused(replay)
        return outcome

    def _settle(
        self, session: Session, received: Received, now: datetime
    ) -> tuple[SettlementOutcome, Callable[[], bool] | None]:
        """The unit of work of a copy: verify, keep it in the inbox, record, bill; for an
        upload also whether the order is flagged (the driver's answer shows it), read as the
        unit's last statement and answered once it committed."""
        settlement, order, records = self._verify(session, received)
        self._keep(session, received, settlement.charge_point_id, now)
        outcome = self._record_signed(
            session, order, settlement, received.text, received.source, now, records
        )
        if received.source != "upload":
            return outcome, None
        return outcome, store_orders.flagged_at_commit(session, order_id=order.id)

    @staticmethod
    def _keep(session: Session, received: Received, charger_id: str, now: datetime) -> None:
        store_settlements.add_to_inbox(
            session,
            charger_id=charger_id,
            token=received.text,
            token_sha256=received.sha256,
            source=received.source,
            now=now,
        )

    def _verify(
        self, session: Session, received: Received
    ) -> tuple[Settlement, Order, list[SettlementRecord] | None]:
        """The verified settlement, its order and the records of the copy
        (:func:`~csms.store.settlements.records_of_copy`, None if they must be read again);
        SettlementRefused when the settlement or the order fails.

        One statement reads the charger's key by (iss, kid), the order the token claims and
        the records of the copy: the unverified ``jti`` and ``txn`` only pick the rows; the
        verified settlement must name the same, else its records are read again.
        """
        parsed, named = received.parsed, received.named
        assert parsed is not None and parsed.claims is not None
        assert named.iss is not None and named.kid is not None  # as peek_parsed found them
        iss, kid = named.iss, named.kid
        txn = parsed.claims.get("txn")
        txn = txn if isinstance(txn, str) else ""
        claimed = (named.jti or "")[:ORDER_ID_MAX]
        found = store_settlements.verify_rows(session, iss=iss, kid=kid, order_id=claimed, txn=txn)
        if found is None:
            raise SettlementRefused(
                Refusal(Reason.UNKNOWN_KEY, f"charger {iss!r} has no key {kid!r}")
            )
        jwk, order, records = found
        settlement = verify_parsed_settlement(
            parsed, key=self._key(jwk), audience=self._settings.issuer
        )
        if isinstance(settlement, Refusal):
            raise SettlementRefused(settlement)
        if order is None or order.id != settlement.order_id:
            raise SettlementRefused(
                Refusal(Reason.UNKNOWN_ORDER, f"no order {settlement.order_id!r}")
            )
        refusal = check_settlement(
            settlement,
            snapshot(order),
            leeway_s=self._settings.token_leeway_s,
            now=int(self._clock().timestamp()),
        )
        if refusal is not None:
            raise SettlementRefused(refusal)
        same = (settlement.charge_point_id, settlement.transaction_id) == (iss, txn)
        return settlement, order, records if same else None

    def _key(self, jwk: str) -> PublicKey:
        """The parsed key of a stored JWK (memoised: the text fixes the key, so nothing to
        invalidate; bounded by clearing)."""
        key = self._keys.get(jwk)
        if key is None:
            try:
                key = PublicKey.from_jwk(json.loads(jwk))
            except (KeyFormatError, ValueError) as exc:
                raise SettlementRefused(
                    Refusal(Reason.UNKNOWN_KEY, f"stored key unusable: {exc}")
                ) from exc
            if len(self._keys) >= KEY_CACHE_SIZE:
                self._keys.clear()
            self._keys[jwk] = key
        return key

    async def _reject(self, received: Received, refusal: Refusal, user_id: int | None) -> None:
        """Stores the refusal as evidence, or counts it on its earlier copy
        (:mod:`csms.payments.rejections`); a charger's own token is kept in the inbox too."""
        now = self._clock()
        values = rejection_values(
            received.text,
            token_sha256=received.sha256,
            named=received.named,
            source=received.source,
            refusal=refusal,
            charger_id=received.charger_id,
            user_id=user_id,
            now=now,
        )

        def unit(session: Session) -> None:
            store_rejection(session, values=values)
            if received.source == "ocpp" and received.charger_id is not None:
                self._keep(session, received, received.charger_id, now)

        await in_worker(self._db, unit)

    def _record_signed(
        self,
        session: Session,
        order: Order,
        s: Settlement,
        token: str,
        source: SettlementSource,
        now: datetime,
        records: list[SettlementRecord] | None,
    ) -> SettlementOutcome:
        if records is None:  # this copy's record by (charger, txn), every record of the order
            records = store_settlements.records_of_copy(
                session, order_id=order.id, charger_id=s.charge_point_id, txn=s.transaction_id
            )
        record = next(
            (r for r in records if (r.charger_id, r.txn) == (s.charge_point_id, s.transaction_id)),
            None,
        )
        if record is not None and record.order_id != order.id:
            # a charger reused its transaction serial for another order: never bill that one
            raise SettlementRefused(
                Refusal(
                    Reason.ORDER_MISMATCH,
                    f"txn {s.transaction_id} of {s.charge_point_id} belongs to {record.order_id}",
                )
            )
        duplicate = record is not None
        inserted, start = False, _at(s.started_at)
        if record is None:
            siblings = [r for r in records if r.order_id == order.id]
            record, inserted = self._attach_signed(session, order, s, token, source, now, siblings)
        if inserted and record.session_no == 1:
            # no payment yet (payments belong to session 1): bill settles and starts at once
            payment = bill(session, order, record, now, unpaid=True, started_at=start)
        else:
            mark_started(session, order, start)
            payment = bill(session, order, record, now)
        return SettlementOutcome(record, order, payment, duplicate)

    def _attach_signed(
        self,
        session: Session,
        order: Order,
        s: Settlement,
        token: str,
        source: str,
        now: datetime,
        siblings: list[SettlementRecord],
    ) -> tuple[SettlementRecord, bool]:
        """The order's waiting OCPP-only record this copy completes, else a new record (and
        whether it was inserted)."""
        values: dict[str, object] = {
            "txn": s.transaction_id,
            "token": token,
            "evse_id": s.evse_id,
            "started_at": _at(s.started_at),
            "stopped_at": _at(s.stopped_at),
            "energy_wh": s.energy_wh,
            "signed_amount": s.amount,
            "charge_amount": s.amount,
            "usage_claim": json.dumps(usage_to_claim(s.usage)),
            "seq": s.seq,
            "offline": s.offline,
            "stop_reason": s.reason,
            "updated_at": now,
        }
        waiting = sorted(
            (r for r in siblings if r.charger_id == s.charge_point_id and r.txn is None),
            key=lambda r: r.session_no,
        )
        for candidate in waiting:
            if compatible(session, candidate, txn=s.transaction_id, evse_id=s.evse_id):
                completed = store_settlements.complete_signed(
                    session, record_id=candidate.id, values=values
                )
                if completed is None:
                    raise Conflict(f"settlement {candidate.id} was matched meanwhile")
                return completed, False
        new = {
            **values,
            "order_id": order.id,
            "charger_id": s.charge_point_id,
            "session_no": max((r.session_no for r in siblings), default=0) + 1,
            "first_source": source,
            "verified_at": now,
        }
        return store_settlements.insert_record(session, values=new), True

    # --- OCPP transactions -------------------------------------------------------------------

    def _transaction(
        self, session: Session, change: TransactionChange, facts: TransactionFacts
    ) -> bool:
        """The unit of work of a transaction's event; True when the order of the transaction's
        charger is now stored started for good (a later start or update changes nothing)."""
        assert facts.id_tag is not None
        if change == "ended":  # what the end reads after the order, sent with the order's read
            store_settlements.end_reads_ahead(
                session, transaction_pk=facts.transaction_pk, order_id=facts.id_tag
            )
        order = store_orders.order_row(session, order_id=facts.id_tag)
        if order is None:
            return False
        now = self._clock()
        if order.charger_id != facts.charger_id:
            store_orders.add_flag(
                session, order_id=order.id, kind="foreign_charger",
                detail=f"transaction {facts.transaction_id} on {facts.charger_id}",
            )  # fmt: skip
            return False
        mark_started(session, order, facts.started_at or now)
        if change != "ended":
            return order.started_at is not None and order.status != OrderState.CREATED
        wh = None
        if facts.meter_start_wh is not None and facts.meter_stop_wh is not None:
            wh = max(0, facts.meter_stop_wh - facts.meter_start_wh)
        values: dict[str, object] = {
            "ocpp_transaction_pk": facts.transaction_pk,
            "ocpp_energy_wh": wh,
            "ocpp_amount": None
            if wh is None
            else ocpp_cost(order, start=facts.started_at, stop=facts.stopped_at, wh=wh),
            "updated_at": now,
        }
        record = store_settlements.record_of_transaction(
            session, transaction_pk=facts.transaction_pk
        )
        if record is None:
            record = self._attach_ocpp(session, order, facts, values, now)
        if record.signed_amount is None and record.ocpp_amount is None:
            store_orders.add_flag(
                session, order_id=order.id, kind="no_meter_data", detail=f"{facts.transaction_id}"
            )
            return False
        bill(session, order, record, now)
        return False

    def _attach_ocpp(
        self,
        session: Session,
        order: Order,
        facts: TransactionFacts,
        values: dict[str, object],
        now: datetime,
    ) -> SettlementRecord:
        records = store_settlements.records_of_order(session, order_id=order.id)
        waiting = [
            r for r in records if r.charger_id == facts.charger_id and r.ocpp_transaction_pk is None
        ]
        ocpp = store_settlements.transaction_of(session, transaction_pk=facts.transaction_pk)
        for candidate in waiting:
            same_evse = facts.evse_id is None or candidate.evse_id in (None, facts.evse_id)
            same_txn = (
                candidate.txn is None
                or (ocpp is not None and ocpp.ocpp_version == "1.6")
                or candidate.txn == facts.transaction_id
            )
            if not (same_evse and same_txn):
                continue
            completed = store_settlements.complete_transaction(
                session, record_id=candidate.id, values=values
            )
            if completed is None:
                raise Conflict(f"settlement {candidate.id} was matched meanwhile")
            return completed
        new = {
            **values,
            "order_id": order.id,
            "charger_id": facts.charger_id,
            # from the same read as ``waiting``: a record inserted since breaks the unique
            # (order, session_no) and the unit runs again, finding it
            "session_no": max((r.session_no for r in records), default=0) + 1,
            "first_source": "transaction",
            "evse_id": facts.evse_id,
            "started_at": facts.started_at,
            "stopped_at": facts.stopped_at,
            "offline": facts.offline,
            "stop_reason": facts.stop_reason,
            "verified_at": now,
        }
        return store_settlements.insert_record(session, values=new)
