"""The exceptions of the payment side (wallet, ledger, provider, orders), under
:class:`PaymentError`, one branch of :class:`csms.errors.CsmsError` (the whole tree is drawn
there).

::

    PaymentError
    ├── InvalidAmount          an amount that is not a non-negative integer (minor units)
    ├── InvalidKey             an idempotency key that is empty or too long
    ├── UnknownWallet          no wallet for this user (create the user first)
    ├── IdempotencyConflict    a key reused for a different operation or amount
    ├── InsufficientFunds      available balance below the amount to hold
    ├── HoldExceeded           capture/release of more than the order's remaining hold
    ├── RefundExceeded         a refund of more than the order was charged (less refunds)
    ├── AlreadyCaptured        a capture found the payment captured already (by another)
    └── ProviderError          the payment provider refused or failed
        ├── PaymentDeclined    the provider declined the payment (card refused, limit)
        └── ProviderUnavailable  no answer, or a lost one: the outcome is unknown

The order errors (:mod:`csms.payments.order_errors`), ``IllegalTransition`` and ``Conflict``
are under it too, in their own modules. They are converted at the boundary only (HTTP in
:mod:`csms.api`).
"""

from __future__ import annotations

from csms.errors import CsmsError


class PaymentError(CsmsError):
    """Root of every error raised by :mod:`csms.payments`."""


class InvalidAmount(PaymentError, ValueError):
    """An amount must be an integer >= 0 in minor units (some operations need > 0)."""


class InvalidKey(PaymentError, ValueError):
    """An idempotency key must be a string of 1..200 characters."""


class UnknownWallet(PaymentError):
    """The user has no wallet (no such user)."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"no wallet for user {user_id}")
        self.user_id = user_id


class IdempotencyConflict(PaymentError):
    """An idempotency key was used before for a different operation."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"idempotency key {key!r} was used for {detail}")
        self.key = key


class InsufficientFunds(PaymentError):
    """The wallet's available balance does not cover the hold."""

    def __init__(self, *, available: int, needed: int) -> None:
        super().__init__(f"insufficient funds: {available} available, {needed} needed")
        self.available = available
        self.needed = needed


class HoldExceeded(PaymentError):
    """More than the order's remaining hold was to be captured or released."""

    def __init__(self, *, order_id: str, remaining: int, asked: int) -> None:
        super().__init__(f"order {order_id}: {asked} asked, only {remaining} left on hold")
        self.order_id = order_id
        self.remaining = remaining
        self.asked = asked


class RefundExceeded(PaymentError):
    """A refund above what the order was charged, less what was refunded already."""

    def __init__(self, *, order_id: str, refundable: int, asked: int) -> None:
        super().__init__(f"order {order_id}: refund of {asked} asked, {refundable} refundable")
        self.order_id = order_id
        self.refundable = refundable
        self.asked = asked


class AlreadyCaptured(PaymentError):
    """A capture asked to be the first found the payment captured already (by another)."""


class ProviderError(PaymentError):
    """The payment provider failed or refused an operation."""


class PaymentDeclined(ProviderError):
    """The provider declined (the driver's card or account refused the payment)."""


class ProviderUnavailable(ProviderError):
    """The provider did not answer, or its answer was lost (timeout, connection reset, a 5xx):
    the call may or may not have moved money, so the outcome is found out later by key."""
