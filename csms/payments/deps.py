"""FastAPI dependency for the payment side's services (built by :mod:`csms.payments.wiring`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, status

if TYPE_CHECKING:
    from csms.payments.wiring import PaymentSide


async def get_payments(request: Request) -> PaymentSide:
    """The payment side (``async def``: FastAPI runs a plain ``def`` in a worker thread)."""
    side: PaymentSide | None = getattr(request.app.state, "payments", None)
    if side is None or side.service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "payments are not enabled")
    return side


PaymentsDep = Annotated["PaymentSide", Depends(get_payments)]
