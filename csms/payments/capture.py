"""Capturing a payment once, issuing its receipt, and refunds.

The driver's confirm and the automatic capture (``auto_capture_s`` after the first verified
copy) both come here. The step ``pending -> captured`` is a conditional update, so of two
racing captures (two taps, two CSMS processes) exactly one moves money; the other finds the
payment captured and returns its receipt. The money moves in the same transaction: capture
the amount from the order's hold and release the rest, or, when the hold was already
released, charge the amount as a debt (the energy was delivered). The capture is one
synchronous unit of work (:func:`capture_unit`), run in the database thread by
:func:`confirm_payment`; so is a refund (:func:`refund_unit`). The receipt is inserted in that
same unit of work, with its number from the series' counter (:mod:`csms.payments.receipts`).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from config.logs import bind
from csms import metrics
from csms.payments import postings
from csms.payments.billing_rules import stored
from csms.payments.errors import AlreadyCaptured
from csms.payments.lifecycle import (
    OrderEvent,
    PaymentEvent,
    PaymentState,
    next_order_state,
    next_payment_state,
)
from csms.payments.order_errors import PaymentNotFound, RefundRefused
from csms.payments.orders import snapshot
from csms.payments.receipts import SEQ_DIGITS, ReceiptTerms, included_tax, rate_text
from csms.store import orders as store_orders
from csms.store import payments as store_payments
from csms.store import receipts as store_receipts
from csms.store.db import Database
from csms.store.models_orders import Order, Payment, Receipt, SettlementRecord
from csms.store.payments import CaptureRows
from csms.store.units_of_work import Conflict, in_worker
from qr_extension.start import StartAuthorization
from qr_extension.tariff import (
    UsageBucket,
    bucket_index_at,
    compute_cost,
    currency_exponent,
    usage_from_claim,
)

LOG = logging.getLogger("csms.payments")


async def get_payment(session: AsyncSession, payment_id: int, *, user_id: int | None) -> Payment:
    payment = await store_payments.get_payment(session, payment_id=payment_id)
    if payment is None or (user_id is not None and payment.user_id != user_id):
        raise PaymentNotFound(f"no payment {payment_id}")
    return payment


async def get_receipt(session: AsyncSession, receipt_id: int, *, user_id: int | None) -> Receipt:
    receipt = await store_payments.get_receipt(session, receipt_id=receipt_id)
    if receipt is None or (user_id is not None and receipt.user_id != user_id):
        raise PaymentNotFound(f"no receipt {receipt_id}")
    return receipt


def usage_of(order: Order, record: SettlementRecord) -> list[UsageBucket]:
    """The session's usage: the signed buckets, or one bucket from the OCPP meter."""
    if record.usage_claim is not None:
        return list(usage_from_claim(json.loads(record.usage_claim)))
    tariff = snapshot(order).tariff
    start = int(record.started_at.timestamp()) if record.started_at else 0
    stop = int(record.stopped_at.timestamp()) if record.stopped_at else start
    return [
        UsageBucket(bucket_index_at(tariff, start), record.ocpp_energy_wh or 0, stop - start, 0)
    ]


def _minor(value: Decimal, currency: str) -> int:
    scaled = value * (Decimal(10) ** currency_exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def breakdown_of(order: Order, record: SettlementRecord) -> dict[str, int]:
    """Fixed, energy, time and idle parts of a session's cost, each in minor units (rounded
    half-up for display; the charged amount is rounded once, over the exact sum)."""
    return _breakdown(order, record, snapshot(order))


def _breakdown(order: Order, record: SettlementRecord, auth: StartAuthorization) -> dict[str, int]:
    cost = compute_cost(auth.tariff, usage_of(order, record), limit_amount=auth.limits.amount)
    parts = {"fixed": cost.fixed, "energy": cost.energy, "time": cost.time, "idle": cost.idle}
    return {name: _minor(value, order.currency) for name, value in parts.items()}


def _receipt(found: CaptureRows, now: datetime, terms: ReceiptTerms) -> dict[str, object]:
    """The receipt's columns (all but its id): the money, the session, and what the receipt
    copies of the operator, the charger and the order's signed tariff; not its number, which
    :func:`csms.store.receipts.insert_numbered` takes from the series' counter."""
    order, record, payment = found.order, found.record, found.payment
    auth = snapshot(order)
    breakdown: dict[str, object] = {
        **_breakdown(order, record, auth),
        "charged": payment.amount,
        "tariff_id": auth.tariff.id,
        "disagreement": record.disagreement,
    }
    duration = None
    if record.started_at and record.stopped_at:
        duration = int((record.stopped_at - record.started_at).total_seconds())
    assert payment.id is not None
    return {
        "payment_id": payment.id,
        "order_id": order.id,
        "user_id": order.user_id,
        "charger_id": order.charger_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "energy_wh": record.energy_wh if record.energy_wh is not None else record.ocpp_energy_wh,
        "duration_s": duration,
        "breakdown": json.dumps(breakdown, sort_keys=True),
        "issued_at": now,
        "evse_id": order.evse_id,
        "location": found.location,
        "operator_name": terms.operator_name,
        "operator_address": terms.operator_address or None,
        "operator_tax_id": terms.operator_tax_id or None,
        "tariff": order.tariff_claim,
        "tax_rate": rate_text(terms.tax_rate),
        "tax_amount": included_tax(payment.amount, terms.tax_rate),
    }


def capture_unit(
    session: Session,
    /,
    *,
    payment_id: int,
    kind: str,
    now: datetime,
    terms: ReceiptTerms,
    user_id: int | None = None,
    first: bool = False,
) -> Receipt:
    """Captures the payment once and returns its receipt (the same receipt on a repeat, or,
    with ``first``, :class:`AlreadyCaptured`: the caller must know whether it captured).

    Synchronous and does not commit: the unit of work of a confirm (:func:`confirm_payment`)
    or an automatic capture (the reaper). ``terms``: the operator's side of the receipt.
    """
    found = store_payments.capture_rows(session, payment_id=payment_id)
    if found is None or (user_id is not None and found.payment.user_id != user_id):
        raise PaymentNotFound(f"no payment {payment_id}")
    payment, order = found.payment, found.order
    if payment.status != PaymentState.PENDING:
        if first:
            raise AlreadyCaptured(f"payment {payment_id} was captured already")
        existing = store_payments.receipt_of_payment(session, payment_id=payment_id)
        if existing is None:
            raise Conflict(f"payment {payment_id} captured, receipt not yet written")
        return existing
    next_payment_state(payment.status, PaymentEvent.CAPTURE)
    # a kept write: a racing capture that was first, or a revision of the amount committed
    # since the read, fails the unit at its next round trip
    store_payments.mark_captured(
        session, payment_id=payment_id, amount=payment.amount, kind=kind, now=now
    )
    stored(payment, status=PaymentState.CAPTURED.value, captured_at=now, capture_kind=kind)
    user, oid = order.user_id, order.id
    if payment.method == "debt":
        if payment.amount > 0:
            postings.charge_debt(
                session, user_id=user, order_id=oid, amount=payment.amount, key=f"debt:{order.id}"
            )
    else:
        postings.capture_and_release(
            session,
            user_id=user,
            order_id=oid,
            amount=payment.amount,
            capture_key=f"capture:{order.id}",
            release_key=f"release:{order.id}",
        )
    next_order_state(order.status, OrderEvent.PAY)
    store_orders.mark_paid(session, order_id=order.id, old_status=order.status, now=now)
    stored(
        order, status="paid", paid_at=now, updated_at=now,
        hold_released_at=order.hold_released_at or now,
    )  # fmt: skip
    values = _receipt(found, now, terms)
    # last: the series' counter row stays locked from here to the commit
    return store_receipts.insert_numbered(
        session, values=values, series=terms.prefix, digits=SEQ_DIGITS
    )


async def confirm_payment(
    db: Database,
    *,
    payment_id: int,
    kind: str,
    now: datetime,
    terms: ReceiptTerms,
    user_id: int | None = None,
) -> Receipt:
    """Captures the payment once, in one unit of work in the database thread (committed when
    this returns), and returns its receipt; PaymentNotFound for an unknown payment or one of
    another driver (``user_id``)."""
    try:
        receipt = await in_worker(
            db,
            lambda session: capture_unit(
                session,
                payment_id=payment_id,
                kind=kind,
                now=now,
                terms=terms,
                user_id=user_id,
                first=True,
            ),
        )
    except AlreadyCaptured:  # a repeat (or the reaper was first): the receipt issued then
        return await in_worker(
            db,
            lambda session: capture_unit(
                session, payment_id=payment_id, kind=kind, now=now, terms=terms, user_id=user_id
            ),
        )
    metrics.payment_captured(kind, receipt.amount)
    with bind(order_id=receipt.order_id):
        LOG.info("payment %s captured (%s): %s", payment_id, kind, receipt.amount)
    return receipt


def refund_unit(session: Session, /, *, payment_id: int, amount: int, key: str | None) -> Payment:
    """Refunds part or all of a captured payment (synchronous, does not commit); idempotent by
    ``key`` (None: the refunded total so far and ``amount``, so that a repeat of the same step
    posts once). The ledger posts a key once, and the refunded total is read back from it."""
    payment = store_payments.lock_payment(session, payment_id=payment_id)
    if payment is None:
        raise PaymentNotFound(f"no payment {payment_id}")
    key = f"refund:{payment_id}:{key or f'{payment.refunded_amount}+{amount}'}"
    if type(amount) is not int or amount < 1:
        raise RefundRefused("a refund is a positive amount in minor units")
    if payment.status == PaymentState.PENDING:
        raise RefundRefused("the payment is not captured: nothing to refund")
    user, oid = payment.user_id, payment.order_id
    if amount > postings.refundable_amount(session, user_id=user, order_id=oid):
        done = payment.refunded_amount
        raise RefundRefused(f"only {payment.amount - done} of payment {payment_id} is refundable")
    postings.refund(session, user_id=user, order_id=oid, amount=amount, key=key)
    refunded = payment.amount - postings.refundable_amount(session, user_id=user, order_id=oid)
    event = PaymentEvent.REFUND_ALL if refunded >= payment.amount else PaymentEvent.REFUND
    new = next_payment_state(payment.status, event) if refunded else payment.status
    if not store_payments.record_refund(session, payment=payment, refunded=refunded, status=new):
        raise Conflict(f"payment {payment_id} was refunded meanwhile")
    return payment


async def refund_payment(db: Database, *, payment_id: int, amount: int, key: str | None) -> Payment:
    """:func:`refund_unit` in one unit of work (committed when this returns); the payment as
    it then stands."""
    return await in_worker(
        db, lambda session: refund_unit(session, payment_id=payment_id, amount=amount, key=key)
    )
