"""Payments and receipts in the database.

The settlement's and the capture's units of work run the prebuilt statements here (see
:mod:`csms.store.fast`) and get loaded model objects back (:func:`~csms.store.rows.loaded`);
the pages read through the async session. A conditional update (``... WHERE status =
'pending'``) returns whether it matched: the caller decides what a lost race means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlmodel import Session, col
from sqlmodel import select as orm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.fast import Fast
from csms.store.models import Charger
from csms.store.models_orders import Order, Payment, Receipt, SettlementRecord
from csms.store.rows import columns, insert_returning_id, loaded, split, with_defaults
from csms.store.types import UtcDateTime
from csms.store.units_of_work import matched_one
from csms.store.writer import table_of

PAYMENTS = table_of(Payment)
RECEIPTS = table_of(Receipt)
_ORDERS = table_of(Order)
_RECORDS = table_of(SettlementRecord)
_CHARGERS = table_of(Charger)

_PAYMENT_OF_ORDER = Fast(select(PAYMENTS).where(PAYMENTS.c.order_id == bindparam("order_id")))
_PAYMENT_COLUMNS = _PAYMENT_OF_ORDER.columns
_REVISE = Fast(
    update(PAYMENTS)
    .where(PAYMENTS.c.id == bindparam("payment_id"), PAYMENTS.c.status == "pending")
    .values(amount=bindparam("amount"))
)
_INSERT_PAYMENT = insert_returning_id(PAYMENTS)
_CAPTURE_ROWS = Fast(
    select(*columns(PAYMENTS, _ORDERS, _RECORDS), _CHARGERS.c.location)
    .select_from(PAYMENTS)
    .join(_ORDERS, _ORDERS.c.id == PAYMENTS.c.order_id)
    .join(_RECORDS, _RECORDS.c.id == PAYMENTS.c.settlement_id)
    .outerjoin(_CHARGERS, _CHARGERS.c.id == _ORDERS.c.charger_id)
    .where(PAYMENTS.c.id == bindparam("payment_id"))
)
_RECEIPT_OF_PAYMENT = Fast(select(RECEIPTS).where(RECEIPTS.c.payment_id == bindparam("payment_id")))
_CAPTURE = Fast(
    update(PAYMENTS)
    .where(
        PAYMENTS.c.id == bindparam("payment_id"),
        PAYMENTS.c.status == "pending",
        PAYMENTS.c.amount == bindparam("amount"),  # the amount the capture read and moves
    )
    .values(
        status="captured",
        captured_at=bindparam("now", type_=UtcDateTime),
        capture_kind=bindparam("kind"),
    )
)


# --- inside a unit of work (synchronous) -----------------------------------------------------


def payment_of(session: Session, *, order_id: str) -> Payment | None:
    """The order's payment (there is at most one), loaded outside the session."""
    found = _PAYMENT_OF_ORDER.first(session.connection(), {"order_id": order_id})
    return (
        None if found is None else loaded(Payment, dict(zip(_PAYMENT_COLUMNS, found, strict=True)))
    )


def insert_payment(session: Session, *, values: Mapping[str, Any]) -> Payment:
    """Inserts a payment with a prebuilt Core ``INSERT .. RETURNING id`` and returns it
    loaded (outside the session: later changes go through conditional updates). The unique
    ``order_id`` fails here as it would at a flush."""
    full = with_defaults(Payment, values)
    full.pop("id", None)
    full["id"] = _INSERT_PAYMENT.scalar(session.connection(), full)
    return loaded(Payment, full)


def revise(session: Session, *, payment_id: int | None, amount: int) -> bool:
    """A pending payment's new amount (a captured one is never changed); whether it matched."""
    params = {"payment_id": payment_id, "amount": amount}
    return _REVISE.execute(session.connection(), params) == 1


@dataclass(frozen=True)
class CaptureRows:
    """What a capture reads, in one statement: the payment, its order, its billed session
    record, and the charger's location (for the receipt; None when it has none)."""

    payment: Payment
    order: Order
    record: SettlementRecord
    location: str | None


def capture_rows(session: Session, *, payment_id: int) -> CaptureRows | None:
    """The payment, its order, its billed session record and the charger's location, in one
    statement."""
    found = _CAPTURE_ROWS.first(session.connection(), {"payment_id": payment_id})
    if found is None:
        return None
    payment, order, record = split(found[:-1], PAYMENTS, _ORDERS, _RECORDS)
    return CaptureRows(
        loaded(Payment, payment), loaded(Order, order), loaded(SettlementRecord, record), found[-1]
    )


def receipt_of_payment(session: Session, *, payment_id: int) -> Receipt | None:
    existing = _RECEIPT_OF_PAYMENT.first(session.connection(), {"payment_id": payment_id})
    if existing is None:
        return None
    return loaded(Receipt, dict(zip(_RECEIPT_OF_PAYMENT.columns, existing, strict=True)))


def mark_captured(
    session: Session, *, payment_id: int, amount: int, kind: str, now: datetime
) -> None:
    """``pending -> captured`` where the amount is still ``amount``, the one the capture read
    and moves (of two racing captures, one matches; a revision committed since the read
    makes it match none) as a kept write, sent with the unit's next round trip;
    :class:`~csms.store.units_of_work.Conflict` there when it matched no row."""
    params = {"payment_id": payment_id, "amount": amount, "now": now, "kind": kind}
    check = matched_one(f"payment {payment_id} was captured or revised meanwhile")
    _CAPTURE.later(session.connection(), params, check=check)


def lock_payment(session: Session, *, payment_id: int) -> Payment | None:
    """The payment, locked for the rest of the transaction (``FOR UPDATE``: a concurrent
    capture is waited for and seen)."""
    return session.get(Payment, payment_id, with_for_update=True)


def record_refund(session: Session, *, payment: Payment, refunded: int, status: str) -> bool:
    """The refunded total and status, where the payment's status is still the one read; on a
    match ``payment`` is read again. Whether it matched. Does not commit."""
    result = session.exec(
        update(Payment)
        .where(col(Payment.id) == payment.id, col(Payment.status) == payment.status)
        .values(refunded_amount=refunded, status=status)
    )
    if result.rowcount != 1:
        return False
    session.refresh(payment)
    return True


# --- async: the pages, the background passes -------------------------------------------------


async def get_payment(session: AsyncSession, *, payment_id: int) -> Payment | None:
    return await session.get(Payment, payment_id)


async def get_receipt(session: AsyncSession, *, receipt_id: int) -> Receipt | None:
    return await session.get(Receipt, receipt_id)


async def receipt_of(session: AsyncSession, *, payment_id: int) -> Receipt | None:
    rows = await session.exec(orm_select(Receipt).where(Receipt.payment_id == payment_id))
    return rows.first()


async def payment_of_order(session: AsyncSession, *, order_id: str) -> Payment | None:
    return (await session.exec(orm_select(Payment).where(Payment.order_id == order_id))).first()


async def list_payments(
    session: AsyncSession,
    *,
    status: str | None = None,
    order_id: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[Payment]:
    """Newest first, optionally of one status, or of one order."""
    query = orm_select(Payment)
    if status is not None:
        query = query.where(Payment.status == status)
    if order_id is not None:
        query = query.where(Payment.order_id == order_id)
    query = query.order_by(col(Payment.id).desc()).offset(offset).limit(limit)
    return list((await session.exec(query)).all())


async def pending_before(
    session: AsyncSession, *, status: str, created_before: datetime, limit: int
) -> list[int]:
    """Ids of payments in ``status`` created at or before ``created_before``."""
    rows = await session.exec(
        orm_select(Payment.id)
        .where(Payment.status == status, col(Payment.created_at) <= created_before)
        .limit(limit)
    )
    return [i for i in rows.all() if i is not None]
