"""Billing one session record: the rules that decide what an order charges (brief 7.8-7.11).

* session 1 of an order is billed; a later session on the same order is flagged, not charged;
* the signed amount pays; when the OCPP meter disagrees on the energy, the lower of the signed
  amount and the OCPP-metered cost is charged and the order flagged; OCPP data alone bills
  from the meter with the order's snapshot tariff (:func:`ocpp_cost`);
* one :class:`Payment` per order (unique in the database), pending until captured, its amount
  revised while new evidence arrives; a captured one is never changed here, only flagged;
* a payment made after the hold was released (7.10) is a debt, and flagged.

Every state change is a conditional update; a lost race raises
:class:`~csms.payments.unit_of_work.Conflict` and the unit of work runs again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.payments import statements
from csms.payments.lifecycle import (
    OrderEvent,
    PaymentEvent,
    PaymentState,
    next_order_state,
    next_payment_state,
)
from csms.payments.orders import add_flag, snapshot
from csms.payments.unit_of_work import Conflict
from csms.store.models import Transaction
from csms.store.models_orders import Order, Payment, SettlementRecord
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
    """What a session charges, and whether its sources disagree (7.8)."""
    if record.signed_amount is None:
        return record.ocpp_amount or 0, False
    disagree = record.ocpp_energy_wh is not None and record.ocpp_energy_wh != record.energy_wh
    if disagree and record.ocpp_amount is not None:
        return min(record.signed_amount, record.ocpp_amount), True
    return record.signed_amount, disagree


async def insert_loaded(session: AsyncSession, row: Payment | SettlementRecord) -> None:
    """Inserts ``row`` with a prebuilt Core ``INSERT .. RETURNING id`` and attaches it to the
    session as if it had been loaded (no unit-of-work flush; a later change to it is flushed
    as an UPDATE). A unique constraint fails here as it would at a flush."""
    statement = statements.INSERT_PAYMENT if isinstance(row, Payment) else statements.INSERT_RECORD
    connection = await session.connection()
    inserted = await connection.execute(statement, row.model_dump(exclude={"id"}))
    row.id = inserted.scalar_one()
    make_transient_to_detached(row)
    session.add(row)


def stored(row: object, **values: object) -> None:
    """Records on the loaded row what a conditional UPDATE just wrote (no re-read, and not
    marked dirty: the next flush must not write it again unconditionally)."""
    for name, value in values.items():
        set_committed_value(row, name, value)


async def _set_order_state(
    session: AsyncSession, order: Order, event: OrderEvent, now: datetime, **values: object
) -> None:
    """Applies ``event`` with a conditional update (the state read must still be current)."""
    new = next_order_state(order.status, event)
    if new.value == order.status and not values:
        return
    orders = statements.ORDERS  # Core, not the ORM's bulk UPDATE path: this is the hot path
    connection = await session.connection()
    result = await connection.execute(
        update(orders)
        .where(orders.c.id == order.id, orders.c.status == order.status)
        .values(status=new.value, updated_at=now, **values)
    )
    if result.rowcount != 1:
        raise Conflict(f"order {order.id} changed under us")
    stored(order, status=new.value, updated_at=now, **values)


async def mark_started(session: AsyncSession, order: Order, at: datetime) -> None:
    """created -> started (other states keep theirs); records when the charger first used it."""
    if order.started_at is None or order.status == "created":
        await _set_order_state(
            session, order, OrderEvent.START, at, started_at=order.started_at or at
        )


async def bill(
    session: AsyncSession,
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
        payment = (await session.exec(select(Payment).where(Payment.order_id == order.id))).first()
    if record.session_no != 1:
        await add_flag(
            session, order.id, "second_transaction",
            f"session {record.session_no} ({record.charger_id} txn {record.txn}) not charged",
        )  # fmt: skip
        return payment
    amount, disagree = charge_of(record)
    if (record.charge_amount, record.disagreement) != (amount, disagree):
        record.charge_amount, record.disagreement = amount, disagree
        record.updated_at = now
        session.add(record)
        await session.flush()
    if disagree:
        await add_flag(
            session, order.id, "disagreement",
            f"signed {record.energy_wh} Wh / {record.signed_amount}, OCPP "
            f"{record.ocpp_energy_wh} Wh / {record.ocpp_amount}: charging {amount}",
        )  # fmt: skip
    if payment is None:
        assert record.id is not None
        released = order.hold_released_at is not None
        payment = Payment(
            order_id=order.id,
            user_id=order.user_id,
            settlement_id=record.id,
            amount=amount,
            currency=order.currency,
            method="debt" if released else "hold",
            created_at=now,
        )
        await insert_loaded(session, payment)  # unique order_id: a concurrent copy retries
        start = {} if started_at is None else {"started_at": order.started_at or started_at}
        await _set_order_state(session, order, OrderEvent.SETTLE, now, settled_at=now, **start)
        if released:
            await add_flag(
                session, order.id, "settled_after_release",
                f"hold released at {order.hold_released_at}; {amount} billed as a debt",
            )  # fmt: skip
    elif payment.status == PaymentState.PENDING and payment.amount != amount:
        next_payment_state(payment.status, PaymentEvent.REVISE)
        result = await session.exec(
            update(Payment)
            .where(col(Payment.id) == payment.id, col(Payment.status) == PaymentState.PENDING)
            .values(amount=amount)
        )
        if result.rowcount != 1:
            raise Conflict(f"payment {payment.id} was captured meanwhile")
        stored(payment, amount=amount)
    elif payment.status != PaymentState.PENDING and payment.amount != amount:
        await add_flag(
            session, order.id, "evidence_after_capture",
            f"captured {payment.amount}, later evidence says {amount}",
        )  # fmt: skip
    return payment


async def next_session_no(session: AsyncSession, order_id: str) -> int:
    rows = await session.exec(
        select(SettlementRecord.session_no).where(SettlementRecord.order_id == order_id)
    )
    return max(rows.all(), default=0) + 1


async def compatible(
    session: AsyncSession, record: SettlementRecord, *, txn: str | None, evse_id: int | None
) -> bool:
    """May an OCPP-only record and a signed settlement ``txn`` be the same session?"""
    if evse_id is not None and record.evse_id is not None and evse_id != record.evse_id:
        return False
    if txn is None or record.ocpp_transaction_pk is None:
        return True
    ocpp = await session.get(Transaction, record.ocpp_transaction_pk)
    # 2.0.1: the transactionId is the charger's serial; 1.6: the CSMS assigned another id
    return ocpp is None or ocpp.ocpp_version == "1.6" or ocpp.transaction_id == txn
