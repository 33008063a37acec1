"""Driver API: confirm a payment and read payments and receipts.

``POST /api/v1/payments/{id}/confirm`` captures the amount from the hold, releases the rest
and issues the receipt; a repeat returns the same receipt. Another driver's payment or
receipt is 404.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from csms.api.deps import CtxDep, CurrentUser, SessionDep
from csms.api.params import RowIdPath
from csms.api.responses import errors
from csms.payments.capture import confirm_payment, get_payment, get_receipt
from csms.payments.order_errors import PaymentNotFound
from csms.payments.receipts import ReceiptTerms
from csms.payments.schemas import PaymentPublic, ReceiptPublic, payment_public, receipt_public

router = APIRouter(prefix="/api/v1", tags=["payments"], responses=errors(401))


def _not_found(exc: PaymentNotFound) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


@router.post("/payments/{payment_id}/confirm", response_model=ReceiptPublic, responses=errors(404))
async def confirm(payment_id: RowIdPath, user: CurrentUser, ctx: CtxDep) -> ReceiptPublic:
    """Captures the payment once and returns its receipt (``receipt_id``)."""
    try:  # in a unit of work of its own (no request session: nothing else is read)
        receipt = await confirm_payment(
            ctx.db,
            payment_id=payment_id,
            kind="driver",
            now=ctx.clock(),
            terms=ReceiptTerms.from_settings(ctx.settings),
            user_id=user.id,
        )
    except PaymentNotFound as exc:
        raise _not_found(exc) from exc
    return receipt_public(receipt)


@router.get("/payments/{payment_id}", response_model=PaymentPublic, responses=errors(404))
async def get_one_payment(
    payment_id: RowIdPath, user: CurrentUser, session: SessionDep
) -> PaymentPublic:
    try:
        payment = await get_payment(session, payment_id, user_id=user.id)
    except PaymentNotFound as exc:
        raise _not_found(exc) from exc
    return await payment_public(session, payment)


@router.get("/receipts/{receipt_id}", response_model=ReceiptPublic, responses=errors(404))
async def get_one_receipt(
    receipt_id: RowIdPath, user: CurrentUser, session: SessionDep
) -> ReceiptPublic:
    try:
        return receipt_public(await get_receipt(session, receipt_id, user_id=user.id))
    except PaymentNotFound as exc:
        raise _not_found(exc) from exc
