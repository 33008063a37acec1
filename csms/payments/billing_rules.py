"""Billing one session record: the rules that decide what an order charges.

* session 1 of an order is billed; a later session on the same order is flagged, not charged;
* the signed amount pays; when the OCPP meter disagrees on the energy, the lower of the signed
  amount and the OCPP-metered cost is charged and the order flagged; OCPP data alone bills
  from the meter with the order's snapshot tariff (:func:`ocpp_cost`);
* one :class:`Payment` per order (unique in the database), pending until captured, its amount
  revised while new evidence arrives; a captured one is never changed here, only flagged;
* a payment made after the hold was released is a debt, and flagged.

Every state change is a conditional update; a lost race raises
:class:`~csms.store.units_of_work.Conflict` and the unit of work runs again. The functions
are synchronous: they run inside the units of work of the database thread, and read and
write through :mod:`csms.store`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from csms.payments.lifecycle import (
    OrderEvent,
    OrderState,
    PaymentEvent,
    PaymentState,
    next_order_state,
    next_payment_state,
)
from csms.payments.orders import snapshot
from csms.store import orders as store_orders
from csms.store import payments as store_payments
from csms.store import settlements as store_settlements
from csms.store.models_orders import Order, Payment, SettlementRecord
from csms.store.units_of_work import Conflict
from qr_extension.tariff import UsageBucket, bucket_index_at, compute_cost


def ocpp_cost(order: Order, *, start: datetime | None, stop: datetime | None, wh: int) -> int:
    """The cost from OCPP meter data with the order's snapshot tariff: one bucket at the start
    time, all time counted as charging (OCPP does not report idle time), held to ``lim.amt``."""
    auth = snapshot(order)
    start_s = int(start.timestamp()) if start else auth.issued_at
    seconds = max(0, int(stop.timestamp()) - start_s) if stop else 0
    bucket = UsageBucket(bucket_index_at(auth.tariff, start_s), wh, seconds, 0)
    return compute_cost(auth.tariff, [bucket], limit_amount=auth.limits.amount).total


def charge_of(record: SettlementRecord) -> tuple[int, bool]:
    """What a session charges, and whether its signed and OCPP records disagree."""
    if record.signed_amount is None:
        return record.ocpp_amount or 0, False
    disagree = record.ocpp_energy_wh is not None and record.ocpp_energy_wh != record.energy_wh
    if disagree and record.ocpp_amount is not None:
        return min(record.signed_amount, record.ocpp_amount), True
    return record.signed_amount, disagree


def stored(row: object, **values: object) -> None:
    """Records on the loaded row what a conditional UPDATE just wrote (no re-read, and not
    marked dirty: the next flush must not write it again unconditionally)."""
    for name, value in values.items():
        set_committed_value(row, name, value)


def _set_order_state(
    session: Session, order: Order, event: OrderEvent, now: datetime, **values: object
) -> None:
    """Applies ``event`` with a conditional update (the state read must still be current).
    An order the driver cancelled that the charger used all the same is honoured, and flagged
    ``started_after_cancel``."""
    new = next_order_state(order.status, event)
    if order.status == OrderState.CANCELLING:
        store_orders.add_flag(
            session, order_id=order.id, kind="started_after_cancel",
            detail="the charger started it before it heard of the driver's cancel; "
            "billed from the hold",
        )  # fmt: skip
    if new.value == order.status and not values:
        return
    # a kept write: the order changed since the read fails the unit at its next round trip
    store_orders.step_order_checked(
        session, order_id=order.id, old_status=order.status, new_status=new.value, now=now,
        values=values,
    )  # fmt: skip
    stored(order, status=new.value, updated_at=now, **values)


def mark_started(session: Session, order: Order, at: datetime) -> None:
    """created -> started (other states keep theirs); records when the charger first used it."""
    if order.started_at is None or order.status == "created":
        _set_order_state(session, order, OrderEvent.START, at, started_at=order.started_at or at)


def bill(
    session: Session,
    order: Order,
    record: SettlementRecord,
    now: datetime,
    *,
    unpaid: bool = False,
    started_at: datetime | None = None,
) -> Payment | None:
    """Brings the order's payment in line with ``record`` (the pending amount follows the
    evidence; a captured payment is never changed here, only flagged). ``unpaid``: the caller
    knows the order has no payment (it just inserted session 1), so it is not looked up; the
    unique ``order_id`` of payments still guards that. ``started_at``: the caller has not
    marked the order started; settling it does both in one update (created -> settled is a
    step of the table, and started_at is kept as :func:`mark_started` would write it)."""
    payment = None
    if not (unpaid and record.session_no == 1):
        payment = store_payments.payment_of(session, order_id=order.id)
    if record.session_no != 1:
        store_orders.add_flag(
            session, order_id=order.id, kind="second_transaction",
            detail=f"session {record.session_no} ({record.charger_id} txn {record.txn})"
            " not charged",
        )  # fmt: skip
        return payment
    amount, disagree = charge_of(record)
    if (record.charge_amount, record.disagreement) != (amount, disagree):
        store_settlements.set_charge(
            session, record_id=record.id, amount=amount, disagree=disagree, now=now
        )
        stored(record, charge_amount=amount, disagreement=disagree, updated_at=now)
    if disagree:
        store_orders.add_flag(
            session, order_id=order.id, kind="disagreement",
            detail=f"signed {record.energy_wh} Wh / {record.signed_amount}, OCPP "
            f"{record.ocpp_energy_wh} Wh / {record.ocpp_amount}: charging {amount}",
        )  # fmt: skip
    if payment is None:
        assert record.id is not None
        released = order.hold_released_at is not None
        values: dict[str, object] = {
            "order_id": order.id,
            "user_id": order.user_id,
            "settlement_id": record.id,
            "amount": amount,
            "currency": order.currency,
            "method": "debt" if released else "hold",
            "created_at": now,
        }
        start = {} if started_at is None else {"started_at": order.started_at or started_at}
        # the order's step first: it is a kept write that goes in the payment's round trip
        _set_order_state(session, order, OrderEvent.SETTLE, now, settled_at=now, **start)
        payment = store_payments.insert_payment(session, values=values)  # unique: a copy retries
        if released:
            store_orders.add_flag(
                session, order_id=order.id, kind="settled_after_release",
                detail=f"hold released at {order.hold_released_at}; {amount} billed as a debt",
            )  # fmt: skip
    elif payment.status == PaymentState.PENDING and payment.amount != amount:
        next_payment_state(payment.status, PaymentEvent.REVISE)
        if not store_payments.revise(session, payment_id=payment.id, amount=amount):
            raise Conflict(f"payment {payment.id} was captured meanwhile")
        stored(payment, amount=amount)
    elif payment.status != PaymentState.PENDING and payment.amount != amount:
        store_orders.add_flag(
            session, order_id=order.id, kind="evidence_after_capture",
            detail=f"captured {payment.amount}, later evidence says {amount}",
        )  # fmt: skip
    return payment


def compatible(
    session: Session, record: SettlementRecord, *, txn: str | None, evse_id: int | None
) -> bool:
    """May an OCPP-only record and a signed settlement ``txn`` be the same session?"""
    if evse_id is not None and record.evse_id is not None and evse_id != record.evse_id:
        return False
    if txn is None or record.ocpp_transaction_pk is None:
        return True
    ocpp = store_settlements.transaction_of(session, transaction_pk=record.ocpp_transaction_pk)
    # 2.0.1: the transactionId is the charger's serial; 1.6: the CSMS assigned another id
    return ocpp is None or ocpp.ocpp_version == "1.6" or ocpp.transaction_id == txn
