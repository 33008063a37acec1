"""The order and payment transition tables: legal steps, typed errors for illegal ones."""

from __future__ import annotations

import pytest

from csms.errors import CsmsError, IllegalTransition
from csms.payments.lifecycle import (
    ORDER_TRANSITIONS,
    OrderEvent,
    OrderState,
    PaymentEvent,
    PaymentState,
    next_order_state,
    next_payment_state,
    order_states_allowing,
)


def test_the_happy_path_and_the_late_debt() -> None:
    state = OrderState.CREATED
    for event, expected in [
        (OrderEvent.START, OrderState.STARTED),
        (OrderEvent.SETTLE, OrderState.SETTLED),
        (OrderEvent.PAY, OrderState.PAID),
        (OrderEvent.SETTLE, OrderState.PAID),  # a late copy changes nothing
    ]:
        state = next_order_state(state, event)
        assert state == expected
    assert next_order_state("expired", OrderEvent.SETTLE) == OrderState.SETTLED  # 7.10 debt
    assert next_payment_state("pending", PaymentEvent.CAPTURE) == PaymentState.CAPTURED
    assert next_payment_state("captured", PaymentEvent.REFUND_ALL) == PaymentState.REFUNDED


@pytest.mark.parametrize(
    ("state", "event"),
    [
        ("created", OrderEvent.PAY),
        ("paid", OrderEvent.EXPIRE),
        ("paid", OrderEvent.CANCEL),
        ("settled", OrderEvent.EXPIRE),
        ("started", OrderEvent.EXPIRE),  # a started order's hold is never released by the reaper
        ("nonsense", OrderEvent.START),
    ],
)
def test_illegal_order_steps_name_state_and_event(state: str, event: OrderEvent) -> None:
    with pytest.raises(IllegalTransition) as raised:
        next_order_state(state, event)
    assert isinstance(raised.value, CsmsError)  # one class for every lifecycle's illegal step
    assert (raised.value.machine, raised.value.state, raised.value.event) == (
        "order", state, event.value,
    )  # fmt: skip
    assert state in str(raised.value) and event.value in str(raised.value)


def test_illegal_payment_steps() -> None:
    for state, event in [
        ("pending", PaymentEvent.REFUND),
        ("refunded", PaymentEvent.CAPTURE),
        ("captured", PaymentEvent.CAPTURE),
        ("captured", PaymentEvent.REVISE),
    ]:
        with pytest.raises(IllegalTransition):
            next_payment_state(state, event)  # fmt: skip


def test_every_state_has_a_row_and_where_clauses_follow_the_table() -> None:
    assert set(ORDER_TRANSITIONS) == set(OrderState)
    assert order_states_allowing(OrderEvent.EXPIRE) == ["created"]
    assert sorted(order_states_allowing(OrderEvent.PAY)) == ["settled"]


def test_the_drivers_cancel_keeps_the_hold_until_it_may_go() -> None:
    """``withdraw`` only from ``created``; a ``cancelling`` order that the charger still starts
    lives on as any started order, else ``cancel`` ends it (the hold released)."""
    assert order_states_allowing(OrderEvent.WITHDRAW) == ["created"]
    assert next_order_state("created", OrderEvent.WITHDRAW) == OrderState.CANCELLING
    assert next_order_state("cancelling", OrderEvent.START) == OrderState.STARTED
    assert next_order_state("cancelling", OrderEvent.SETTLE) == OrderState.SETTLED
    assert next_order_state("cancelling", OrderEvent.CANCEL) == OrderState.CANCELLED
    for state in ("started", "settled", "paid", "expired", "cancelled"):
        with pytest.raises(IllegalTransition):
            next_order_state(state, OrderEvent.WITHDRAW)
    with pytest.raises(IllegalTransition):
        next_order_state("cancelling", OrderEvent.EXPIRE)
