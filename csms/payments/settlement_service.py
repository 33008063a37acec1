"""The settlement sink: every copy of a transaction settles its order once (brief 1.6, 7.7-7.11).

A session of an order reaches the CSMS as an uploaded settlement, as the charger's DataTransfer
``Settlement`` and as OCPP transaction messages, each possibly repeated, late or out of order.
All of them land on one :class:`SettlementRecord` per session:

* a signed settlement is found again by ``(charger_id, txn)``; an OCPP transaction by its row
  id; a copy of the other kind attaches to the order's session that lacks it (matched by
  transaction id on 2.0.1, by order and EVSE on 1.6, where the CSMS assigns the id);
* session 1 of an order is billed: one :class:`Payment` per order (unique in the database),
  pending until captured, its amount revised while new evidence arrives; a later session on
  the same order is stored and flagged, never charged automatically (7.11);
* the signed amount pays; when the OCPP meter disagrees on the energy, the lower of the signed
  amount and the OCPP-metered cost is charged and the order flagged (7.8); OCPP data alone
  bills from the meter with the order's snapshot tariff.

Refused settlements are stored as evidence (``settlement_rejections``, one row per distinct
refusal with its repeats counted: :mod:`csms.payments.rejections`), never raised into OCPP.
Each copy is one unit of work in the database thread
(:func:`~csms.store.units_of_work.in_worker`: synchronous, one hop from the event loop, the
ES256 verification inside it, next to the key it reads), and its retry resolves every race.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from config.logs import bind
from config.settings import Settings
from csms import metrics
from csms.payments.billing_rules import bill, compatible, mark_started, ocpp_cost
from csms.payments.lifecycle import (
    PaymentState,
)
from csms.payments.order_errors import SettlementRefused
from csms.payments.orders import snapshot
from csms.payments.rejections import rejection_values
from csms.ports import SettlementSource, TransactionChange, TransactionFacts, may_be_order_id
from csms.store import orders as store_orders
from csms.store import settlements as store_settlements
from csms.store.db import Database
from csms.store.models_orders import Order, Payment, SettlementRecord
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


@dataclass(frozen=True, slots=True)
class SettlementOutcome:
    """Where a copy landed: its session record, the order, the order's payment (if billed)."""

    record: SettlementRecord
    order: Order
    payment: Payment | None
    duplicate: bool


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _route(token: str) -> tuple[jws.Parsed, str, str, dict[str, Any]]:
    """The token read once (:func:`parse_settlement`) with its ``iss``, ``kid`` and claims,
    NOT verified: what picks the charger's key and the rows to read, and what
    :func:`verify_parsed_settlement` then verifies without reading the token again.
    SettlementRefused with :func:`peek_settlement`'s reason when they cannot be read."""
    parsed = parse_settlement(token)
    peeked = parsed if isinstance(parsed, Refusal) else peek_parsed(parsed)
    if isinstance(peeked, Refusal):
        raise SettlementRefused(peeked)
    assert isinstance(parsed, jws.Parsed) and parsed.claims is not None
    return parsed, peeked[0], peeked[1], parsed.claims


def _jti(claims: object) -> str | None:
    jti = claims.get("jti") if isinstance(claims, dict) else None
    return jti[:20] if isinstance(jti, str) else None


class SettlementService:
    """The :class:`~csms.payments.SettlementSink` of the payment side."""

    def __init__(self, db: Database, *, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._keys: dict[str, PublicKey] = {}
        self._settings = settings
        self._clock = clock

    # --- the sink -------------------------------------------------------------------------

    async def on_settlement(self, charger_id: str, token: str, source: SettlementSource) -> None:
        """A refused settlement is kept as evidence and logged; any other failure (the
        database) is raised, so that the charger is not told Accepted and sends it again."""
        try:
            await self.submit(token, source=source, charger_id=charger_id)
        except SettlementRefused as exc:
            LOG.warning("%s: settlement refused: %s", charger_id, exc)

    async def on_synced(self, charger_id: str, seq: int) -> None:
        """Nothing to do now: the reaper reads ``charger_sync`` (7.10)."""
        return None

    async def on_transaction_event(
        self, change: TransactionChange, facts: TransactionFacts
    ) -> None:
        """Bills the order whose id is the transaction's tag; a tag that names no order (an
        RFID card, whatever its shape) finds none and changes nothing."""
        if facts.id_tag is None or not may_be_order_id(facts.id_tag):
            return
        await in_worker(self._db, lambda s: self._transaction(s, change, facts))

    # --- signed settlements -----------------------------------------------------------------

    async def submit(
        self,
        token: str,
        *,
        source: SettlementSource,
        charger_id: str | None = None,
        user_id: int | None = None,
    ) -> SettlementOutcome:
        """Verifies a settlement and settles its order in one transaction; SettlementRefused
        (stored as evidence, with the uploading driver ``user_id``) when it does not verify
        or match its order."""
        token = token.strip()
        now = self._clock()
        try:
            outcome = await in_worker(
                self._db, lambda s: self._settle(s, token, source, charger_id, now)
            )
        except SettlementRefused as exc:
            metrics.settlement(source, exc.refusal.reason.value)
            await self._reject(token, source, exc.refusal, charger_id, user_id)
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
            await self._reject(token, source, replay, charger_id, user_id)
            raise SettlementRefused(replay)
        return outcome

    def _settle(
        self,
        session: Session,
        token: str,
        source: SettlementSource,
        charger_id: str | None,
        now: datetime,
    ) -> SettlementOutcome:
        """The unit of work of a copy: verify, keep an upload in the inbox, record, bill."""
        settlement, order, records = self._verify(session, token, charger_id)
        if source == "upload":
            store_settlements.keep_upload(
                session, token=token, charger_id=settlement.charge_point_id, now=now
            )
        return self._record_signed(session, order, settlement, token, source, now, records)

    def _verify(
        self, session: Session, token: str, charger_id: str | None
    ) -> tuple[Settlement, Order, list[SettlementRecord] | None]:
        """The verified settlement, its order and the records of the copy
        (:func:`~csms.store.settlements.records_of_copy`, None if they must be read again);
        SettlementRefused when the settlement or the order fails.

        One statement reads the charger's key by (iss, kid), the order the token claims and
        the records of the copy: the unverified ``jti`` and ``txn`` only pick the rows; the
        verified settlement must name the same, else its records are read again.
        """
        parsed, iss, kid, claims = _route(token)
        if charger_id is not None and iss != charger_id:
            raise SettlementRefused(
                Refusal(Reason.WRONG_ISSUER, f"iss {iss!r} sent by {charger_id!r}")
            )
        claimed = _jti(claims) or ""
        txn = claims.get("txn")
        txn = txn if isinstance(txn, str) else ""
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

    async def _reject(
        self,
        token: str,
        source: str,
        refusal: Refusal,
        charger_id: str | None,
        user_id: int | None,
    ) -> None:
        """Stores the refusal as evidence, or counts it on its earlier copy
        (:mod:`csms.payments.rejections`)."""
        values = rejection_values(
            token,
            source=source,
            refusal=refusal,
            charger_id=charger_id,
            user_id=user_id,
            now=self._clock(),
        )
        await in_worker(self._db, lambda session: store_rejection(session, values=values))

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
                if not store_settlements.complete_signed(
                    session, record_id=candidate.id, values=values
                ):
                    raise Conflict(f"settlement {candidate.id} was matched meanwhile")
                assert candidate.id is not None
                return store_settlements.record_by_id(session, record_id=candidate.id), False
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
    ) -> None:
        assert facts.id_tag is not None
        order = store_orders.order_row(session, order_id=facts.id_tag)
        if order is None:
            return
        now = self._clock()
        if order.charger_id != facts.charger_id:
            store_orders.add_flag(
                session, order_id=order.id, kind="foreign_charger",
                detail=f"transaction {facts.transaction_id} on {facts.charger_id}",
            )  # fmt: skip
            return
        mark_started(session, order, facts.started_at or now)
        if change != "ended":
            return
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
            return
        bill(session, order, record, now)

    def _attach_ocpp(
        self,
        session: Session,
        order: Order,
        facts: TransactionFacts,
        values: dict[str, object],
        now: datetime,
    ) -> SettlementRecord:
        waiting = store_settlements.records_without_transaction(
            session, order_id=order.id, charger_id=facts.charger_id
        )
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
            if not store_settlements.complete_transaction(
                session, record_id=candidate.id, values=values
            ):
                raise Conflict(f"settlement {candidate.id} was matched meanwhile")
            assert candidate.id is not None
            return store_settlements.record_by_id(session, record_id=candidate.id)
        new = {
            **values,
            "order_id": order.id,
            "charger_id": facts.charger_id,
            "session_no": store_settlements.next_session_no(session, order_id=order.id),
            "first_source": "transaction",
            "evse_id": facts.evse_id,
            "started_at": facts.started_at,
            "stopped_at": facts.stopped_at,
            "offline": facts.offline,
            "stop_reason": facts.stop_reason,
            "verified_at": now,
        }
        return store_settlements.insert_record(session, values=new)
