"""The order and payment lifecycles as transition tables (``{state: {event: next_state}}``).

Every change of ``orders.status`` and ``payments.status`` goes through :func:`next_order_state`
or :func:`next_payment_state`; an illegal step raises :class:`IllegalTransition`, which names
the machine, the state and the event. The tables are drawn in docs/protocol.md, "Order
lifecycle". The database writes use the same tables for their conditional updates
(``UPDATE ... WHERE status IN (states where the event is legal)``), so two processes racing on
one order cannot both make the same step.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from csms.errors import IllegalTransition


class OrderState(StrEnum):
    CREATED = "created"  # hold placed, start token issued, nothing seen from the charger yet
    STARTED = "started"  # the charger reported a transaction, or a settlement was seen
    SETTLED = "settled"  # a billable record exists: a pending payment with its amount
    PAID = "paid"  # the payment was captured (by the driver's confirm or automatically)
    EXPIRED = "expired"  # never used: hold released after exp + leeway and a later Synced
    CANCELLED = "cancelled"  # cancelled (operator or driver) and the hold released
    # the driver cancelled it, but the charger may still hold its start token: the hold stays
    # until the token can no longer start anything (exp + leeway and a later Synced)
    CANCELLING = "cancelling"


class OrderEvent(StrEnum):
    START = "start"  # OCPP start/update for the order, or a settlement arrived
    SETTLE = "settle"  # the first billable record (signed settlement or OCPP end)
    PAY = "pay"  # capture
    EXPIRE = "expire"  # the reaper released the hold of an unused order
    CANCEL = "cancel"  # the operator, or the driver once the hold may be released
    WITHDRAW = "withdraw"  # the driver cancelled an unused order the charger may still start


class PaymentState(StrEnum):
    PENDING = "pending"  # amount known, not captured; revised while new evidence arrives
    CAPTURED = "captured"
    REFUNDED = "refunded"  # fully refunded (partial refunds keep CAPTURED)


class PaymentEvent(StrEnum):
    REVISE = "revise"  # a later copy changed the amount to charge (never upwards of the hold)
    CAPTURE = "capture"
    REFUND = "refund"  # partial: stays captured
    REFUND_ALL = "refund_all"


S, E = OrderState, OrderEvent
ORDER_TRANSITIONS: Final[dict[OrderState, dict[OrderEvent, OrderState]]] = {
    S.CREATED: {E.START: S.STARTED, E.SETTLE: S.SETTLED, E.EXPIRE: S.EXPIRED,
                E.CANCEL: S.CANCELLED, E.WITHDRAW: S.CANCELLING},
    # the charger used the token before it heard of the cancel: honoured, billed from the hold
    S.CANCELLING: {E.START: S.STARTED, E.SETTLE: S.SETTLED, E.CANCEL: S.CANCELLED},
    S.STARTED: {E.START: S.STARTED, E.SETTLE: S.SETTLED, E.CANCEL: S.CANCELLED},
    S.SETTLED: {E.START: S.SETTLED, E.SETTLE: S.SETTLED, E.PAY: S.PAID},
    S.PAID: {E.START: S.PAID, E.SETTLE: S.PAID},
    # 7.10: a settlement after the hold was released is still honoured (as a debt)
    S.EXPIRED: {E.START: S.EXPIRED, E.SETTLE: S.SETTLED},
    S.CANCELLED: {E.START: S.CANCELLED, E.SETTLE: S.SETTLED},
}  # fmt: skip

P, PE = PaymentState, PaymentEvent
PAYMENT_TRANSITIONS: Final[dict[PaymentState, dict[PaymentEvent, PaymentState]]] = {
    P.PENDING: {PE.REVISE: P.PENDING, PE.CAPTURE: P.CAPTURED},
    P.CAPTURED: {PE.REFUND: P.CAPTURED, PE.REFUND_ALL: P.REFUNDED},
    P.REFUNDED: {},
}

# Orders whose hold is still placed (or, for SETTLED from EXPIRED/CANCELLED, a debt is due).
HOLDING_STATES: Final = frozenset({S.CREATED, S.STARTED, S.SETTLED, S.CANCELLING})
FINAL_ORDER_STATES: Final = frozenset({S.PAID, S.EXPIRED, S.CANCELLED})


def next_order_state(state: str, event: OrderEvent) -> OrderState:
    """The order's state after ``event``; IllegalTransition if the table has no such step."""
    try:
        return ORDER_TRANSITIONS[OrderState(state)][event]
    except (KeyError, ValueError):
        raise IllegalTransition("order", state, event.value) from None


def next_payment_state(state: str, event: PaymentEvent) -> PaymentState:
    """The payment's state after ``event``; IllegalTransition if the table has no such step."""
    try:
        return PAYMENT_TRANSITIONS[PaymentState(state)][event]
    except (KeyError, ValueError):
        raise IllegalTransition("payment", state, event.value) from None


def order_states_allowing(event: OrderEvent) -> list[str]:
    """The states from which ``event`` is legal: the ``WHERE status IN (...)`` of an update."""
    return [state.value for state, table in ORDER_TRANSITIONS.items() if event in table]


def payment_states_allowing(event: PaymentEvent) -> list[str]:
    return [state.value for state, table in PAYMENT_TRANSITIONS.items() if event in table]
