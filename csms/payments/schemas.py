"""The API shapes of orders, settlements, payments and receipts, and how they are built.

Amounts are integers in minor units; the cost breakdown is given per part in minor units
(each part rounded half-up for display; ``amount`` is the one that is charged).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.bounds import Amount, DurationS, EnergyWh, EvseId
from csms.payments.capture import breakdown_of
from csms.payments.lifecycle import PaymentState
from csms.payments.orders import snapshot
from csms.store import orders as store_orders
from csms.store import payments as store_payments
from csms.store import settlements as store_settlements
from csms.store.models_orders import (
    Order,
    Payment,
    Receipt,
    SettlementRecord,
    SettlementRejection,
)
from qr_extension.tariff import tariff_to_claim


class OrderCreate(BaseModel):
    """``POST /api/v1/orders``: exactly one of energy_wh, amount, duration_s or full."""

    charger_id: str = Field(min_length=1, max_length=48)
    evse_id: EvseId | None = None
    energy_wh: EnergyWh | None = None
    amount: Amount | None = None
    duration_s: DurationS | None = None
    full: bool = False


class LimitsPublic(BaseModel):
    amount: int
    energy_wh: int | None
    duration_s: int | None


class LivePublic(BaseModel):
    """A started order's session so far (``GET /api/v1/orders/{id}`` only)."""

    energy_wh: int = Field(description="energy so far, from the charger's latest register reading")
    amount: int = Field(
        description="cost so far with the order's tariff, minor units, held to the order's limit"
    )
    read_at: datetime = Field(description="when the charger took that reading")


class OrderPublic(BaseModel):
    id: str
    status: str
    charger_id: str
    evse_id: int | None
    start_token: str
    issued_at: datetime
    expires_at: datetime
    hold_amount: int
    currency: str
    request_kind: str
    request_value: int | None
    limits: LimitsPublic
    tariff: list[Any] = Field(description="the signed tar claim (docs/protocol.md)")
    qr_svg: str
    qr_png: str
    payment_id: int | None = None
    payment_status: str | None = None
    amount: int | None = Field(default=None, description="what is (or will be) charged")
    energy_wh: int | None = None
    receipt_id: int | None = None
    flagged: bool = False
    created_at: datetime
    live: LivePublic | None = Field(
        default=None,
        description="a started order's session so far (in GET /api/v1/orders/{id}); null "
        "for an order not started, or before its charger reported the transaction's meter start",
    )


class OrderDetail(OrderPublic):
    """The operator's view: flags and every session record."""

    user_id: int
    flags: list[dict[str, str]] = []
    settlements: list[SettlementPublic] = []
    started_at: datetime | None = None
    settled_at: datetime | None = None
    paid_at: datetime | None = None
    hold_released_at: datetime | None = None


class SettlementUpload(BaseModel):
    token: str = Field(min_length=1, max_length=8000)


class SettlementPublic(BaseModel):
    id: int
    order_id: str
    charger_id: str
    session_no: int
    txn: str | None
    evse_id: int | None
    started_at: datetime | None
    stopped_at: datetime | None
    energy_wh: int | None
    amount: int
    currency: str
    signed_amount: int | None
    ocpp_energy_wh: int | None
    ocpp_amount: int | None
    disagreement: bool
    sources: list[str]
    breakdown: dict[str, int]
    payment_id: int | None
    payment_status: str | None
    receipt_id: int | None
    hold_amount: int
    flagged: bool


class SettlementAccepted(BaseModel):
    """What an uploader who does not own the order is told: nothing about the order."""

    status: str = "accepted"


class PaymentPublic(BaseModel):
    id: int
    order_id: str
    amount: int
    currency: str
    status: str
    method: str
    refunded_amount: int
    capture_kind: str | None
    created_at: datetime
    captured_at: datetime | None
    receipt_id: int | None = None


class RejectionPublic(BaseModel):
    """A refused settlement as the operator sees it: why, whose, when (first and last), how
    often, and the token's digest and head (the whole token when it was no longer)."""

    id: int
    reason: str
    detail: str
    source: str
    charger_id: str | None
    order_id: str | None
    kid: str | None
    user_id: int | None  # the driver who uploaded it; None for a charger's DataTransfer
    count: int
    created_at: datetime
    last_at: datetime
    token_sha256: str
    token_chars: int
    token_head: str


def rejection_public(row: SettlementRejection) -> RejectionPublic:
    assert row.id is not None
    return RejectionPublic(
        **row.model_dump(exclude={"id", "user_id"}), id=row.id, user_id=row.user_id or None
    )


class OperatorPublic(BaseModel):
    """The seller named on a receipt (as configured when it was issued)."""

    name: str
    address: str | None
    tax_id: str | None


class TaxLine(BaseModel):
    """Tax included in a receipt's amount: the rate (a decimal fraction, "0.13") and the
    amount in minor units (rounded once, half-up)."""

    rate: str
    amount: int


class ReceiptPublic(BaseModel):
    """A receipt: ``number`` is the printed one (unique, sequential per series); ``amount``
    is what was paid, tax included (``net_amount`` + the ``tax`` lines); ``breakdown`` holds
    the parts of the cost in minor units; ``tariff`` is the signed tariff the order used.
    Receipts issued before these details were kept have no operator and no tax lines."""

    id: int
    receipt_id: int
    number: str
    payment_id: int
    order_id: str
    charger_id: str
    evse_id: int | None
    location: str | None
    operator: OperatorPublic | None
    amount: int
    net_amount: int
    tax: list[TaxLine]
    currency: str
    energy_wh: int | None
    duration_s: int | None
    breakdown: dict[str, Any]
    tariff: list[Any] | None = Field(description="the order's signed tar claim (docs/protocol.md)")
    paid_at: datetime


async def order_public(session: AsyncSession, order: Order, *, base: str = "") -> OrderPublic:
    payment = await store_payments.payment_of_order(session, order_id=order.id)
    receipt = (
        await store_payments.receipt_of(session, payment_id=payment.id)
        if payment and payment.id
        else None
    )
    records = await store_settlements.records_of(session, order_id=order.id)
    flagged = bool(await store_orders.flags_of(session, order_id=order.id))
    return order_view(order, payment, receipt, records[0] if records else None, flagged, base)


def new_order_public(order: Order, *, base: str = "") -> OrderPublic:
    """:func:`order_public` of an order just placed: nothing to read (no payment, receipt,
    record or flag can exist yet)."""
    return order_view(order, None, None, None, False, base)


def order_view(
    order: Order,
    payment: Payment | None,
    receipt: Receipt | None,
    first: SettlementRecord | None,
    flagged: bool,
    base: str = "",
) -> OrderPublic:
    auth = snapshot(order)
    link = f"{base}/api/v1/orders/{order.id}"
    return OrderPublic(
        id=order.id,
        status=order.status,
        charger_id=order.charger_id,
        evse_id=order.evse_id,
        start_token=order.start_token,
        issued_at=order.issued_at,
        expires_at=order.expires_at,
        hold_amount=order.hold_amount,
        currency=order.currency,
        request_kind=order.request_kind,
        request_value=order.request_value,
        limits=LimitsPublic(
            amount=auth.limits.amount,
            energy_wh=auth.limits.energy_wh,
            duration_s=auth.limits.duration_s,
        ),
        tariff=tariff_to_claim(auth.tariff),
        qr_svg=f"{link}/qr.svg",
        qr_png=f"{link}/qr.png",
        payment_id=payment.id if payment else None,
        payment_status=payment.status if payment else None,
        amount=payment.amount if payment else None,
        energy_wh=_energy(first),
        receipt_id=receipt.id if receipt else None,
        flagged=flagged,
        created_at=order.created_at,
    )


def _energy(record: SettlementRecord | None) -> int | None:
    if record is None:
        return None
    return record.energy_wh if record.energy_wh is not None else record.ocpp_energy_wh


async def order_detail(session: AsyncSession, order: Order) -> OrderDetail:
    public = await order_public(session, order)
    flags = [
        {"kind": f.kind, "detail": f.detail}
        for f in await store_orders.flags_of(session, order_id=order.id)
    ]
    settlements = [
        await settlement_public(session, order, r)
        for r in await store_settlements.records_of(session, order_id=order.id)
    ]
    return OrderDetail(
        **public.model_dump(),
        user_id=order.user_id,
        flags=flags,
        settlements=settlements,
        started_at=order.started_at,
        settled_at=order.settled_at,
        paid_at=order.paid_at,
        hold_released_at=order.hold_released_at,
    )


async def settlement_public(
    session: AsyncSession,
    order: Order,
    record: SettlementRecord,
    *,
    payment: Payment | None = None,
    flagged: bool | None = None,
) -> SettlementPublic:
    """The driver's view of a session record. ``payment``: the order's payment when the caller
    has just read it (the settlement upload), else it is looked up; a pending payment has no
    receipt, so none is looked up for it. ``flagged``: whether the order has a flag, when the
    caller has just read it (the upload), else it is looked up."""
    if flagged is None:
        flagged = bool(await store_orders.flags_of(session, order_id=order.id))
    if payment is None:
        payment = await store_payments.payment_of_order(session, order_id=order.id)
    billed = payment is not None and payment.settlement_id == record.id
    captured = payment is not None and payment.status != PaymentState.PENDING
    receipt = (
        await store_payments.receipt_of(session, payment_id=payment.id)
        if billed and captured and payment and payment.id
        else None
    )
    sources = [
        name
        for name, present in (("signed", record.txn), ("ocpp", record.ocpp_transaction_pk))
        if present is not None
    ]
    assert record.id is not None
    return SettlementPublic(
        id=record.id,
        order_id=order.id,
        charger_id=record.charger_id,
        session_no=record.session_no,
        txn=record.txn,
        evse_id=record.evse_id,
        started_at=record.started_at,
        stopped_at=record.stopped_at,
        energy_wh=_energy(record),
        amount=payment.amount if billed and payment else record.charge_amount,
        currency=order.currency,
        signed_amount=record.signed_amount,
        ocpp_energy_wh=record.ocpp_energy_wh,
        ocpp_amount=record.ocpp_amount,
        disagreement=record.disagreement,
        sources=sources,
        breakdown=breakdown_of(order, record),
        payment_id=payment.id if billed and payment else None,
        payment_status=payment.status if billed and payment else None,
        receipt_id=receipt.id if receipt else None,
        hold_amount=order.hold_amount,
        flagged=flagged,
    )


async def payment_public(session: AsyncSession, payment: Payment) -> PaymentPublic:
    assert payment.id is not None
    receipt = await store_payments.receipt_of(session, payment_id=payment.id)
    return PaymentPublic(
        id=payment.id,
        order_id=payment.order_id,
        amount=payment.amount,
        currency=payment.currency,
        status=payment.status,
        method=payment.method,
        refunded_amount=payment.refunded_amount,
        capture_kind=payment.capture_kind,
        created_at=payment.created_at,
        captured_at=payment.captured_at,
        receipt_id=receipt.id if receipt else None,
    )


def receipt_public(receipt: Receipt) -> ReceiptPublic:
    assert receipt.id is not None
    operator = None
    if receipt.operator_name is not None:
        operator = OperatorPublic(
            name=receipt.operator_name,
            address=receipt.operator_address,
            tax_id=receipt.operator_tax_id,
        )
    tax = []
    if receipt.tax_rate is not None and receipt.tax_amount is not None and receipt.tax_rate != "0":
        tax = [TaxLine(rate=receipt.tax_rate, amount=receipt.tax_amount)]
    return ReceiptPublic(
        id=receipt.id,
        receipt_id=receipt.id,
        number=receipt.number,
        payment_id=receipt.payment_id,
        order_id=receipt.order_id,
        charger_id=receipt.charger_id,
        evse_id=receipt.evse_id,
        location=receipt.location,
        operator=operator,
        amount=receipt.amount,
        net_amount=receipt.amount - sum(line.amount for line in tax),
        tax=tax,
        currency=receipt.currency,
        energy_wh=receipt.energy_wh,
        duration_s=receipt.duration_s,
        breakdown=json.loads(receipt.breakdown),
        tariff=json.loads(receipt.tariff) if receipt.tariff else None,
        paid_at=receipt.issued_at,
    )
