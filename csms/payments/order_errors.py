"""The errors of the order side, under :class:`~csms.payments.errors.PaymentError`.

::

    PaymentError
    └── OrderError
        ├── OrderNotFound          no such order (or not the caller's: same answer)
        ├── PaymentNotFound        no such payment or receipt (or not the caller's)
        ├── InvalidOrderRequest    the order request cannot be served (charger, EVSE, limits)
        ├── SettlementRefused      a settlement that does not verify or match its order
        ├── OrderNotCancellable    the driver's cancel of an order already used or ended
        └── RefundRefused          a refund above what was captured, or of an uncaptured payment

(:class:`~csms.payments.lifecycle.IllegalTransition` is beside them, in the lifecycle module.)
They become HTTP errors only in the routes.
"""

from __future__ import annotations

from csms.payments.errors import PaymentError
from qr_extension.refusal import Refusal


class OrderError(PaymentError):
    """Root of the order-side errors."""


class OrderNotFound(OrderError):
    """No such order for this caller."""


class PaymentNotFound(OrderError):
    """No such payment or receipt for this caller."""


class InvalidOrderRequest(OrderError):
    """The charger, EVSE or request does not allow an order."""


class SettlementRefused(OrderError):
    """A settlement was refused; ``refusal`` carries the stable reason code."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class RefundRefused(OrderError):
    """The refund is larger than what is left to refund, or nothing was captured."""


class OrderNotCancellable(OrderError):
    """The driver cannot cancel the order any more: the charger started it, or it is settled,
    paid or expired. The message says which."""
