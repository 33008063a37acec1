"""Operator API: orders, settlements, payments, refunds and the reconciliation report.

``GET /api/v1/admin/orders`` (``status``, ``charger_id``, ``flagged``), ``GET .../orders/{id}``
(flags and every session record), ``POST .../orders/{id}/cancel`` (releases the hold of an
order that was never settled), ``GET /api/v1/admin/settlements``, ``GET
/api/v1/admin/settlement-rejections`` (``order_id``, ``charger_id``: the evidence of refused
settlements, one entry per distinct refusal with its count), ``GET
/api/v1/admin/payments``, ``POST /api/v1/admin/payments/{id}/refunds`` ``{"amount"}`` (an
``Idempotency-Key`` header makes a retry safe), ``GET /api/v1/admin/reconciliation`` and
``/api/v1/admin/reconciliation.csv``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.api.audit import add_details
from csms.api.deps import CtxDep, OperatorDep, SessionDep, ViewerDep
from csms.api.params import Offset, RowIdPath
from csms.api.responses import BODY, errors
from csms.bounds import Amount
from csms.errors import IllegalTransition
from csms.payments.capture import refund_payment
from csms.payments.driver_cancel import revoke_at_charger
from csms.payments.errors import PaymentError
from csms.payments.lifecycle import OrderState
from csms.payments.order_errors import OrderNotFound, PaymentNotFound, RefundRefused
from csms.payments.orders import cancel_unsettled, get_order
from csms.payments.reconciliation import ReconciliationReport, build_report, to_csv
from csms.payments.schemas import (
    OrderDetail,
    PaymentPublic,
    RejectionPublic,
    SettlementPublic,
    order_detail,
    payment_public,
    rejection_public,
    settlement_public,
)
from csms.store import orders as store_orders
from csms.store import payments as store_payments
from csms.store import rejections as store_rejections
from csms.store import settlements as store_settlements

router = APIRouter(
    prefix="/api/v1/admin", tags=["admin: orders and payments"], responses=errors(401, 403)
)
Limit = Annotated[int, Query(ge=1, le=500)]


class RefundCreate(BaseModel):
    amount: Amount


class CancelAnswer(BaseModel):
    order_id: str
    status: str
    released: int
    revoked_at_charger: bool = False  # the charger stored the revocation of the start token


@router.get("/orders", response_model=list[OrderDetail])
async def admin_orders(
    _: ViewerDep,
    session: SessionDep,
    status_: Annotated[str | None, Query(alias="status")] = None,
    charger_id: str | None = None,
    flagged: bool | None = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> list[OrderDetail]:
    """Newest first; ``flagged`` keeps the orders with (or without) a flag, ``offset`` pages
    to older ones."""
    orders = await store_orders.list_orders(
        session,
        status=status_,
        charger_id=charger_id,
        flagged=flagged,
        offset=offset,
        limit=limit,
    )
    return [await order_detail(session, o) for o in orders]


@router.get("/orders/{order_id}", response_model=OrderDetail, responses=errors(404))
async def admin_order(order_id: str, _: ViewerDep, session: SessionDep) -> OrderDetail:
    try:
        return await order_detail(session, await get_order(session, order_id, user_id=None))
    except OrderNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.post(
    "/orders/{order_id}/cancel",
    response_model=CancelAnswer,
    responses=errors(404, 409, notes={409: "the order can no longer be cancelled"}),
)
async def cancel_order(
    order_id: str, request: Request, _: OperatorDep, ctx: CtxDep
) -> CancelAnswer:
    """Cancels an order that was never settled and releases its hold at once: the operator's
    override of the unused-order rule (a charger gone for good, a stuck session). An unused
    order's start token is first revoked at its charger when it is connected, so the code
    cannot start a session afterwards; a settlement that still arrives is honoured as a debt
    and flagged: the energy was delivered."""
    revoked = False
    try:
        async with ctx.db.session() as session:
            order = await get_order(session, order_id, user_id=None)
        if order.status in (OrderState.CREATED, OrderState.CANCELLING):
            revoked = await revoke_at_charger(ctx.dispatcher, order)
        new, released = await cancel_unsettled(ctx.db, order_id=order_id, now=ctx.clock())
    except OrderNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except IllegalTransition as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    add_details(request, status=new.value, released=released, revoked_at_charger=revoked)
    return CancelAnswer(
        order_id=order_id, status=new.value, released=released, revoked_at_charger=revoked
    )


@router.get("/settlements", response_model=list[SettlementPublic])
async def admin_settlements(
    _: ViewerDep,
    session: SessionDep,
    order_id: str | None = None,
    charger_id: str | None = None,
    disagreement: bool | None = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> list[SettlementPublic]:
    records = await store_settlements.list_records(
        session,
        order_id=order_id,
        charger_id=charger_id,
        disagreement=disagreement,
        offset=offset,
        limit=limit,
    )
    out = []
    for record in records:
        order = await get_order(session, record.order_id, user_id=None)
        out.append(await settlement_public(session, order, record))
    return out


@router.get("/settlement-rejections", response_model=list[RejectionPublic])
async def admin_rejections(
    _: ViewerDep,
    session: SessionDep,
    order_id: str | None = None,
    charger_id: str | None = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> list[RejectionPublic]:
    """Refused settlements, the most recently refused first; a refusal that came again is
    one entry with its ``count`` and first and last time."""
    rows = await store_rejections.list_rejections(
        session, order_id=order_id, charger_id=charger_id, offset=offset, limit=limit
    )
    return [rejection_public(r) for r in rows]


@router.get("/payments", response_model=list[PaymentPublic])
async def admin_payments(
    _: ViewerDep,
    session: SessionDep,
    status_: Annotated[str | None, Query(alias="status")] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> list[PaymentPublic]:
    """Newest first; ``status`` or ``order_id`` (an order's payment) narrow the list."""
    payments = await store_payments.list_payments(
        session, status=status_, order_id=order_id, offset=offset, limit=limit
    )
    return [await payment_public(session, p) for p in payments]


@router.post(
    "/payments/{payment_id}/refunds",
    response_model=PaymentPublic,
    status_code=status.HTTP_201_CREATED,
    responses=BODY | errors(404, 409, notes={409: "nothing (or not that much) is refundable"}),
)
async def refund(
    payment_id: RowIdPath,
    body: RefundCreate,
    request: Request,
    _: OperatorDep,
    ctx: CtxDep,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> PaymentPublic:
    """Refunds part or all of a captured payment to the driver's wallet."""
    add_details(request, amount=body.amount)
    try:
        done = await refund_payment(
            ctx.db, payment_id=payment_id, amount=body.amount, key=idempotency_key
        )
    except PaymentNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except (RefundRefused, IllegalTransition) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except PaymentError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    add_details(
        request, currency=done.currency, order_id=done.order_id, refunded=done.refunded_amount
    )
    async with ctx.db.session() as session:
        return await payment_public(session, done)


async def _report(
    session: AsyncSession, ctx: CtxDep, since: datetime | None, until: datetime | None
) -> ReconciliationReport:
    return await build_report(
        session, now=ctx.clock(), leeway_s=ctx.settings.token_leeway_s, since=since, until=until
    )


@router.get("/reconciliation")
async def reconciliation(
    _: ViewerDep,
    ctx: CtxDep,
    session: SessionDep,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, object]:
    """Orders settled by QR only, by OCPP only, by both; disagreements; stuck holds."""
    return (await _report(session, ctx, since, until)).as_dict()


@router.get("/reconciliation.csv", response_class=Response)
async def reconciliation_csv(
    _: ViewerDep,
    ctx: CtxDep,
    session: SessionDep,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Response:
    report = await _report(session, ctx, since, until)
    return Response(
        to_csv(report),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="reconciliation.csv"'},
    )
