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

Refused settlements are stored as evidence (``settlement_rejections``), never raised into
OCPP. The retry of :func:`~csms.payments.unit_of_work.in_transaction` resolves every race.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from csms.payments import SettlementSource, TransactionChange, TransactionFacts, statements
from csms.payments.billing_rules import (
    bill,
    compatible,
    insert_loaded,
    mark_started,
    next_session_no,
    ocpp_cost,
)
from csms.payments.lifecycle import (
    PaymentState,
)
from csms.payments.order_errors import SettlementRefused
from csms.payments.orders import add_flag, snapshot
from csms.payments.unit_of_work import Conflict, in_transaction
from csms.protocol.authorization import looks_like_order_id
from csms.store.db import Database
from csms.store.models import Transaction
from csms.store.models_orders import Order, Payment, SettlementRecord, SettlementRejection
from qr_extension import jws
from qr_extension.errors import KeyFormatError
from qr_extension.keys import PublicKey
from qr_extension.refusal import Reason, Refusal
from qr_extension.settlement import (
    SETTLE_TYP,
    Settlement,
    check_settlement,
    peek_settlement,
    verify_settlement,
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


def _claimed_order(token: str) -> str | None:
    """The order id a refused token claims (unverified: evidence for the operator only)."""
    read = jws.read_header(token, typ=SETTLE_TYP)
    if isinstance(read, Refusal):
        return None
    claims = jws.unverified_claims(read[0])
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
        try:
            await self.submit(token, source=source, charger_id=charger_id)
        except SettlementRefused as exc:
            LOG.warning("%s: settlement refused: %s", charger_id, exc)
        except Exception:
            LOG.exception("%s: settlement could not be processed", charger_id)

    async def on_synced(self, charger_id: str, seq: int) -> None:
        """Nothing to do now: the reaper reads ``charger_sync`` (7.10)."""
        return None

    async def on_transaction_event(
        self, change: TransactionChange, facts: TransactionFacts
    ) -> None:
        if facts.id_tag is None or not looks_like_order_id(facts.id_tag):
            return
        await in_transaction(self._db, lambda s: self._transaction(s, change, facts))

    # --- signed settlements -----------------------------------------------------------------

    async def submit(
        self, token: str, *, source: SettlementSource, charger_id: str | None = None
    ) -> SettlementOutcome:
        """Verifies a settlement and settles its order in one transaction; SettlementRefused
        (stored as evidence) when it does not verify or match its order."""
        token = token.strip()
        now = self._clock()
        try:
            outcome = await in_transaction(
                self._db, lambda s: self._settle(s, token, source, charger_id, now)
            )
        except SettlementRefused as exc:
            await self._reject(token, source, exc.refusal, charger_id)
            raise
        paid = outcome.payment is not None and outcome.payment.status != PaymentState.PENDING
        if source == "upload" and outcome.duplicate and paid:
            replay = Refusal(Reason.REPLAYED, f"order {outcome.order.id} is already paid")
            await self._reject(token, source, replay, charger_id)
            raise SettlementRefused(replay)
        return outcome

    async def _settle(
        self,
        session: AsyncSession,
        token: str,
        source: SettlementSource,
        charger_id: str | None,
        now: datetime,
    ) -> SettlementOutcome:
        """The unit of work of a copy: verify, keep an upload in the inbox, record, bill."""
        settlement, order = await self._verify(session, token, charger_id)
        if source == "upload":
            await self._store_upload(session, token, settlement.charge_point_id, now)
        return await self._record_signed(session, order, settlement, token, source, now)

    async def _verify(
        self, session: AsyncSession, token: str, charger_id: str | None
    ) -> tuple[Settlement, Order]:
        """The verified settlement and its order; SettlementRefused when either fails.

        One statement reads the charger's key by (iss, kid) and the order the token claims
        (the unverified ``jti`` only picks the row; the verified one must name the same).
        """
        peeked = peek_settlement(token)
        if isinstance(peeked, Refusal):
            raise SettlementRefused(peeked)
        iss, kid = peeked
        if charger_id is not None and iss != charger_id:
            raise SettlementRefused(
                Refusal(Reason.WRONG_ISSUER, f"iss {iss!r} sent by {charger_id!r}")
            )
        claimed = _claimed_order(token) or ""
        params = {"iss": iss, "kid": kid, "order_id": claimed}
        row = (await session.exec(statements.VERIFY_ROWS, params=params)).first()
        if row is None:
            raise SettlementRefused(
                Refusal(Reason.UNKNOWN_KEY, f"charger {iss!r} has no key {kid!r}")
            )
        jwk, order = row
        settlement = verify_settlement(token, key=self._key(jwk), audience=self._settings.issuer)
        if isinstance(settlement, Refusal):
            raise SettlementRefused(settlement)
        if order is None or order.id != settlement.order_id:
            raise SettlementRefused(
                Refusal(Reason.UNKNOWN_ORDER, f"no order {settlement.order_id!r}")
            )
        refusal = check_settlement(
            settlement, snapshot(order), leeway_s=self._settings.token_leeway_s
        )
        if refusal is not None:
            raise SettlementRefused(refusal)
        return settlement, order

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

    async def _store_upload(
        self, session: AsyncSession, token: str, charger_id: str, now: datetime
    ) -> None:
        """Keeps an uploaded token in the inbox (once per token: a repeat inserts nothing)."""
        values = {
            "charger_id": charger_id[:48],
            "token": token[:8000],
            "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
            "source": "upload",
            "received_at": now,
        }
        connection = await session.connection()
        await connection.execute(statements.INSERT_INBOX[connection.dialect.name], values)

    async def _reject(
        self, token: str, source: str, refusal: Refusal, charger_id: str | None
    ) -> None:
        """Stores the refusal as evidence (and an uploaded token in the inbox)."""
        peeked = peek_settlement(token)
        if isinstance(peeked, tuple):
            charger_id = charger_id or peeked[0]
        order_id = _claimed_order(token)
        now = self._clock()
        async with self._db.session() as session:
            if source == "upload":
                await self._store_upload(session, token, charger_id or "?", now)
            session.add(
                SettlementRejection(
                    charger_id=(charger_id or None) and charger_id[:48],
                    order_id=order_id,
                    source=source,
                    reason=refusal.reason.value,
                    detail=refusal.detail[:500],
                    token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                    created_at=now,
                )
            )
            await session.commit()

    async def _record_signed(
        self,
        session: AsyncSession,
        order: Order,
        s: Settlement,
        token: str,
        source: SettlementSource,
        now: datetime,
    ) -> SettlementOutcome:
        # one statement: this copy's record by (charger, txn) and every record of the order
        params = {"order_id": order.id, "charger_id": s.charge_point_id, "txn": s.transaction_id}
        rows = await session.exec(statements.RECORDS_OF_COPY, params=params)
        records = list(rows.all())
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
            record, inserted = await self._attach_signed(
                session, order, s, token, source, now, siblings
            )
        if inserted and record.session_no == 1:
            # no payment yet (payments belong to session 1): bill settles and starts at once
            payment = await bill(session, order, record, now, unpaid=True, started_at=start)
        else:
            await mark_started(session, order, start)
            payment = await bill(session, order, record, now)
        return SettlementOutcome(record, order, payment, duplicate)

    async def _attach_signed(
        self,
        session: AsyncSession,
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
            if await compatible(session, candidate, txn=s.transaction_id, evse_id=s.evse_id):
                result = await session.exec(
                    update(SettlementRecord)
                    .where(
                        col(SettlementRecord.id) == candidate.id,
                        col(SettlementRecord.txn).is_(None),
                    )
                    .values(**values)
                )
                if result.rowcount != 1:
                    raise Conflict(f"settlement {candidate.id} was matched meanwhile")
                await session.refresh(candidate)
                return candidate, False
        record = SettlementRecord(
            order_id=order.id,
            charger_id=s.charge_point_id,
            session_no=max((r.session_no for r in siblings), default=0) + 1,
            first_source=source,
            verified_at=now,
            **values,  # type: ignore[arg-type]
        )
        await insert_loaded(session, record)
        return record, True

    # --- OCPP transactions -------------------------------------------------------------------

    async def _transaction(
        self, session: AsyncSession, change: TransactionChange, facts: TransactionFacts
    ) -> None:
        assert facts.id_tag is not None
        order = await session.get(Order, facts.id_tag)
        if order is None:
            return
        now = self._clock()
        if order.charger_id != facts.charger_id:
            await add_flag(
                session, order.id, "foreign_charger",
                f"transaction {facts.transaction_id} on {facts.charger_id}",
            )  # fmt: skip
            return
        await mark_started(session, order, facts.started_at or now)
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
        record = (
            await session.exec(
                select(SettlementRecord).where(
                    SettlementRecord.ocpp_transaction_pk == facts.transaction_pk
                )
            )
        ).first()
        if record is None:
            record = await self._attach_ocpp(session, order, facts, values, now)
        if record.signed_amount is None and record.ocpp_amount is None:
            await add_flag(session, order.id, "no_meter_data", f"{facts.transaction_id}")
            return
        await bill(session, order, record, now)

    async def _attach_ocpp(
        self,
        session: AsyncSession,
        order: Order,
        facts: TransactionFacts,
        values: dict[str, object],
        now: datetime,
    ) -> SettlementRecord:
        waiting = await session.exec(
            select(SettlementRecord)
            .where(
                SettlementRecord.order_id == order.id,
                SettlementRecord.charger_id == facts.charger_id,
                col(SettlementRecord.ocpp_transaction_pk).is_(None),
            )
            .order_by(col(SettlementRecord.session_no))
        )
        ocpp = await session.get(Transaction, facts.transaction_pk)
        for candidate in waiting.all():
            same_evse = facts.evse_id is None or candidate.evse_id in (None, facts.evse_id)
            same_txn = (
                candidate.txn is None
                or (ocpp is not None and ocpp.ocpp_version == "1.6")
                or candidate.txn == facts.transaction_id
            )
            if not (same_evse and same_txn):
                continue
            result = await session.exec(
                update(SettlementRecord)
                .where(
                    col(SettlementRecord.id) == candidate.id,
                    col(SettlementRecord.ocpp_transaction_pk).is_(None),
                )
                .values(**values)
            )
            if result.rowcount != 1:
                raise Conflict(f"settlement {candidate.id} was matched meanwhile")
            await session.refresh(candidate)
            return candidate
        record = SettlementRecord(
            order_id=order.id,
            charger_id=facts.charger_id,
            session_no=await next_session_no(session, order.id),
            first_source="transaction",
            evse_id=facts.evse_id,
            started_at=facts.started_at,
            stopped_at=facts.stopped_at,
            offline=facts.offline,
            stop_reason=facts.stop_reason,
            verified_at=now,
            **values,  # type: ignore[arg-type]
        )
        session.add(record)
        await session.flush()
        return record
