"""The order side of the payment tables: orders, settlements, payments, receipts, flags.

Exactly-once is held by the database, not only by code:

* ``settlements`` is unique per ``(charger_id, txn)`` (the charger's transaction serial of a
  signed settlement), per ``ocpp_transaction_pk`` (the CSMS's transaction row), and per
  ``(order_id, session_no)``: session 1 is the one billed, a later one is stored and flagged.
* ``payments`` is unique per ``order_id``, ``receipts`` per ``payment_id`` and per ``number``.
* ``orders`` is unique per ``(user_id, idempotency_key)``: a driver's repeated request with the
  same ``Idempotency-Key`` finds the first order instead of making a second one (orders placed
  without a key have none, and NULLs never collide).

``orders`` keeps the exact ``tar`` and ``lim`` claims that were signed (JSON text), so a
settlement is always recomputed from what the charger was given. User ids are plain
integers (the users table belongs to the driver side); nothing cascades from chargers, because
money records outlive a deleted charger.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from csms.store.models import ID_MAX
from csms.store.types import BigInt, UtcDateTime, utcnow

ORDER_ID_MAX = 20
ORDER_KEY_MAX = 100  # a driver's Idempotency-Key (the header's limit on every route)


def _time(*, index: bool = False) -> Any:
    return Field(default=None, sa_type=UtcDateTime, index=index, nullable=True)


def _text(*, nullable: bool = False) -> Any:
    return Field(default=None if nullable else ..., sa_column=Column(Text, nullable=nullable))


class Order(SQLModel, table=True):
    """One order: the hold, the signed start token and the snapshot it was signed with."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_user_created", "user_id", "created_at"),
        Index("ux_orders_user_idempotency_key", "user_id", "idempotency_key", unique=True),
    )

    id: str = Field(primary_key=True, max_length=ORDER_ID_MAX)
    user_id: int
    charger_id: str = Field(max_length=ID_MAX, index=True)
    evse_id: int | None = None
    status: str = Field(default="created", max_length=16, index=True)
    request_kind: str = Field(max_length=16)  # energy | amount | duration | full
    request_value: int | None = None
    tariff_claim: str = _text()  # the exact tar claim (JSON) that was signed
    limits_claim: str = _text()  # the exact lim claim (JSON)
    hold_amount: int
    currency: str = Field(max_length=3)
    start_token: str = _text()
    kid: str = Field(max_length=16)
    issued_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime, index=True)
    remote_started_at: datetime | None = _time()  # the CSMS started it (limits enforced here)
    started_at: datetime | None = _time()
    settled_at: datetime | None = _time()
    paid_at: datetime | None = _time()
    hold_released_at: datetime | None = _time()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    idempotency_key: str | None = Field(default=None, max_length=ORDER_KEY_MAX)  # the driver's


class OrderFlag(SQLModel, table=True):
    """Something about an order the operator must look at; one row per (order, kind)."""

    __tablename__ = "order_flags"
    __table_args__ = (UniqueConstraint("order_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", ondelete="CASCADE", max_length=ORDER_ID_MAX)
    kind: str = Field(max_length=40)
    detail: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class SettlementRecord(SQLModel, table=True):
    """One charging session of an order, from its signed settlement and/or its OCPP record."""

    __tablename__ = "settlements"
    __table_args__ = (
        UniqueConstraint("charger_id", "txn"),
        UniqueConstraint("ocpp_transaction_pk"),
        UniqueConstraint("order_id", "session_no"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", max_length=ORDER_ID_MAX, index=True)
    charger_id: str = Field(max_length=ID_MAX)
    session_no: int = 1  # 1 is billed; a later session on the same order is only flagged
    first_source: str = Field(max_length=16)  # upload | ocpp | transaction
    # the signed settlement (absent while only OCPP data is known)
    txn: str | None = Field(default=None, max_length=40)
    token: str | None = _text(nullable=True)
    evse_id: int | None = None
    started_at: datetime | None = _time()
    stopped_at: datetime | None = _time()
    energy_wh: int | None = Field(default=None, sa_type=BigInt)
    signed_amount: int | None = None
    usage_claim: str | None = _text(nullable=True)
    seq: int | None = Field(default=None, sa_type=BigInt)
    offline: bool = False
    stop_reason: str | None = Field(default=None, max_length=64)
    # the OCPP transaction (absent while only the signed settlement is known)
    ocpp_transaction_pk: int | None = None
    ocpp_energy_wh: int | None = Field(default=None, sa_type=BigInt)
    ocpp_amount: int | None = None
    # what this record charges, and whether the two sources disagree
    charge_amount: int = 0
    disagreement: bool = False
    verified_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


REJECTION_KEY = ("token_sha256", "source", "reason", "user_id")  # what makes a refusal new


class SettlementRejection(SQLModel, table=True):
    """Evidence of refused settlements: one row per token, source, reason and uploading
    driver (0: none, a charger's DataTransfer), its repeats counted; the token's sha256, its
    length and its first characters (:mod:`csms.payments.rejections`)."""

    __tablename__ = "settlement_rejections"
    __table_args__ = (
        Index("uq_settlement_rejections_copy", *REJECTION_KEY, unique=True),
        Index("ix_settlement_rejections_last_at", "last_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str | None = Field(default=None, max_length=ID_MAX)
    order_id: str | None = Field(default=None, max_length=ORDER_ID_MAX, index=True)
    kid: str | None = Field(default=None, max_length=64)
    source: str = Field(max_length=16)
    reason: str = Field(max_length=40)
    detail: str = Field(default="", max_length=500)
    user_id: int = 0
    token_sha256: str = Field(max_length=64)
    token_head: str = _text()
    token_chars: int
    count: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)  # the first
    last_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Payment(SQLModel, table=True):
    """What the driver pays for an order: at most one per order (the database says so)."""

    __tablename__ = "payments"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="orders.id", max_length=ORDER_ID_MAX, unique=True)
    user_id: int = Field(index=True)
    settlement_id: int = Field(foreign_key="settlements.id")
    amount: int
    currency: str = Field(max_length=3)
    status: str = Field(default="pending", max_length=16, index=True)
    method: str = Field(default="hold", max_length=8)  # hold | debt (hold already released)
    refunded_amount: int = 0
    capture_kind: str | None = Field(default=None, max_length=8)  # driver | auto
    created_at: datetime = Field(sa_type=UtcDateTime)  # the first verified copy
    captured_at: datetime | None = _time()


class Receipt(SQLModel, table=True):
    """Issued once per captured payment."""

    __tablename__ = "receipts"

    id: int | None = Field(default=None, primary_key=True)
    payment_id: int = Field(foreign_key="payments.id", unique=True)
    order_id: str = Field(max_length=ORDER_ID_MAX, index=True)
    user_id: int = Field(index=True)
    charger_id: str = Field(max_length=ID_MAX)
    amount: int
    currency: str = Field(max_length=3)
    energy_wh: int | None = None
    duration_s: int | None = None
    breakdown: str = _text()  # JSON: fixed/energy/time/idle in currency units
    issued_at: datetime = Field(sa_type=UtcDateTime)
    # what the receipt says, copied when it is issued (a later change of settings, charger or
    # billing model never changes it); null on receipts issued before these were kept
    number: str = Field(max_length=24, unique=True)  # {prefix}{seq:06d}, see ReceiptCounter
    evse_id: int | None = None
    location: str | None = Field(default=None, max_length=200)
    operator_name: str | None = Field(default=None, max_length=120)
    operator_address: str | None = Field(default=None, max_length=200)
    operator_tax_id: str | None = Field(default=None, max_length=40)
    tariff: str | None = _text(nullable=True)  # JSON: the order's signed tar claim
    tax_rate: str | None = Field(default=None, max_length=12)  # decimal fraction, "0.13"
    tax_amount: int | None = None  # minor units included in ``amount``


class ReceiptCounter(SQLModel, table=True):
    """The last receipt number of one series (a receipt prefix): incremented in the
    transaction that inserts the receipt, so numbers are unique and leave no gaps."""

    __tablename__ = "receipt_counters"

    series: str = Field(primary_key=True, max_length=16)
    last_seq: int = Field(sa_type=BigInt)
