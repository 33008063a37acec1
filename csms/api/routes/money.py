"""The money side's errors converted to HTTP: one handler for the roots of :mod:`csms.drivers`,
:mod:`csms.billing` and :mod:`csms.payments` (the app registers it; a more specific handler
registered for a subclass wins, FastAPI picks handlers by the exception's MRO).
"""

from __future__ import annotations

import re

from fastapi import Request, status
from fastapi.responses import JSONResponse

from csms.billing.errors import (
    AssignmentExists,
    AssignmentInvalid,
    BillingError,
    BillingModelExists,
    BillingModelInUse,
    BillingModelInvalid,
    BillingModelNotFound,
)
from csms.drivers.errors import (
    DriverError,
    EmailTaken,
    InvalidCredentials,
    TokenInvalid,
    TooManyAttempts,
)
from csms.payments.errors import (
    HoldExceeded,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidKey,
    PaymentDeclined,
    PaymentError,
    ProviderError,
    RefundExceeded,
    UnknownWallet,
)

ROOTS: tuple[type[Exception], ...] = (DriverError, BillingError, PaymentError)
"""The exception roots :func:`money_error` handles."""

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (EmailTaken, status.HTTP_409_CONFLICT),
    (InvalidCredentials, status.HTTP_401_UNAUTHORIZED),
    (TooManyAttempts, status.HTTP_429_TOO_MANY_REQUESTS),
    (TokenInvalid, status.HTTP_401_UNAUTHORIZED),
    (BillingModelNotFound, status.HTTP_404_NOT_FOUND),
    (AssignmentExists, status.HTTP_409_CONFLICT),
    (BillingModelExists, status.HTTP_409_CONFLICT),
    (BillingModelInUse, status.HTTP_409_CONFLICT),
    (BillingModelInvalid, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (AssignmentInvalid, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (InsufficientFunds, status.HTTP_402_PAYMENT_REQUIRED),
    (PaymentDeclined, status.HTTP_402_PAYMENT_REQUIRED),
    (InvalidAmount, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (InvalidKey, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (IdempotencyConflict, status.HTTP_409_CONFLICT),
    (HoldExceeded, status.HTTP_409_CONFLICT),
    (RefundExceeded, status.HTTP_409_CONFLICT),
    (UnknownWallet, status.HTTP_404_NOT_FOUND),
    (ProviderError, status.HTTP_502_BAD_GATEWAY),
)


def error_code(exc: Exception) -> str:
    """``InsufficientFunds`` -> ``insufficient_funds``: a stable code clients can switch on."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


async def money_error(request: Request, exc: Exception) -> JSONResponse:
    """Converts the money side's errors to HTTP at the boundary."""
    code = status.HTTP_400_BAD_REQUEST
    for kind, http_status in _STATUS:
        if isinstance(exc, kind):
            code = http_status
            break
    headers = {"WWW-Authenticate": "Bearer"} if code == status.HTTP_401_UNAUTHORIZED else None
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(
        {"detail": str(exc), "code": error_code(exc)}, status_code=code, headers=headers
    )
