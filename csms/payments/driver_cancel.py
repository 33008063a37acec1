"""The driver's cancel of an order never used: cancel it, revoke its token at the charger, and
release the hold as soon as no charger can still start it.

The start token may already sit on the driver's phone or in a screenshot, and the charger
checks it offline: cancelling the order in the database does not stop the charger from
starting it. So the cancel has three steps:

1. ``created -> cancelling`` (:func:`withdraw_unit`): from now on the CSMS answers the order
   id ``Invalid`` and refuses a remote start; the hold stays.
2. When the order's charger is connected, the ``Revoke`` DataTransfer
   (:class:`~csms.commands.RevokeStartToken`). A charger that answers ``Accepted`` has stored
   the revocation durably and never used the token: it will refuse it from now on.
3. Then ``cancelling -> cancelled`` with the hold released at once (:func:`revoked_unit`),
   flagged ``revoked``. Without that answer (offline, a timeout, ``Rejected``, a charger without
   our extension) the order stays ``cancelling`` and the reaper releases the hold like an
   unused order's: after ``exp + leeway`` and a ``Synced`` received after that.

A start or a settlement that still arrives for a ``cancelling`` order is honoured: the order
moves on (``started``, ``settled``) and is billed from the hold it still has, flagged
``started_after_cancel``; one arriving after the hold was released is a debt, as for any
cancelled order. A repeated cancel answers the order as it stands, and tries the revocation
again while the hold is still placed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from config.logs import bind
from csms.commands import CommandDispatcher, RevokeStartToken
from csms.errors import CommandError, IllegalTransition
from csms.payments.lifecycle import OrderEvent, OrderState, next_order_state
from csms.payments.order_errors import OrderNotCancellable, OrderNotFound
from csms.payments.orders import cancel_step
from csms.store import orders as store_orders
from csms.store.db import Database
from csms.store.models_orders import Order
from csms.store.units_of_work import in_worker

LOG = logging.getLogger("csms.orders")
REVOKED_FLAG = "revoked"

_WHY_NOT = {
    OrderState.STARTED: "the charger already started it: stop the session at the charger",
    OrderState.SETTLED: "it is already settled",
    OrderState.PAID: "it is already paid",
    OrderState.EXPIRED: "it expired unused and its hold was released",
}


@dataclass(frozen=True, slots=True)
class DriverCancel:
    """The answer to a driver's cancel.

    ``hold_released``: the hold went back to the wallet (now, or before a repeated cancel).
    Otherwise ``hold_release_at`` is the earliest moment it can: the token's ``exp`` plus the
    leeway; it comes back with the charger's first ``Synced`` after that.
    ``revoked_at_charger``: the charger confirmed it stored the revocation.
    """

    id: str
    status: str
    hold_released: bool
    hold_release_at: datetime | None
    revoked_at_charger: bool
    hold_amount: int


def withdraw_unit(session: Session, /, *, order_id: str, user_id: int, now: datetime) -> Order:
    """Step 1 (synchronous, does not commit): ``created -> cancelling``, the hold kept; the
    order as it then stands. A cancelled or cancelling order is returned unchanged (a repeat).
    OrderNotFound for an unknown order or another driver's; OrderNotCancellable when it was
    used or has ended."""
    order = store_orders.order_row(session, order_id=order_id)
    if order is None or order.user_id != user_id:
        raise OrderNotFound(f"no order {order_id!r}")
    if order.status in (OrderState.CANCELLING, OrderState.CANCELLED):
        return order
    try:
        next_order_state(order.status, OrderEvent.WITHDRAW)
    except IllegalTransition:
        why = _WHY_NOT.get(OrderState(order.status), f"it is {order.status}")
        raise OrderNotCancellable(f"order {order.id} can no longer be cancelled: {why}") from None
    cancel_step(session, order=order, event=OrderEvent.WITHDRAW, now=now, by="by the driver")
    return _reread(session, order_id)


def revoked_unit(session: Session, /, *, order_id: str, now: datetime) -> Order:
    """Step 3 (synchronous, does not commit): the charger stored the revocation, so a
    ``cancelling`` order becomes ``cancelled`` and its hold is released now, flagged
    ``revoked``. Any other state is left alone (a start got there first, or the operator)."""
    order = _reread(session, order_id)
    if order.status != OrderState.CANCELLING:
        return order
    cancel_step(session, order=order, event=OrderEvent.CANCEL, now=now, by="by the driver")
    detail = "the charger stored the revocation of the start token"
    store_orders.add_flag(session, order_id=order_id, kind=REVOKED_FLAG, detail=detail)
    return _reread(session, order_id)


def _reread(session: Session, order_id: str) -> Order:
    order = store_orders.order_row(session, order_id=order_id)
    assert order is not None  # orders are never deleted
    return order


async def cancel_for_driver(
    db: Database,
    dispatcher: CommandDispatcher,
    *,
    order_id: str,
    user_id: int,
    clock: Callable[[], datetime],
    leeway_s: int,
) -> DriverCancel:
    """The driver's cancel, the charger's revocation included (awaited: the answer says
    whether the hold is back). OrderNotFound, OrderNotCancellable."""
    order = await in_worker(
        db,
        lambda session: withdraw_unit(session, order_id=order_id, user_id=user_id, now=clock()),
    )
    with bind(order_id=order.id, charger_id=order.charger_id):
        if order.status == OrderState.CANCELLING and await revoke_at_charger(dispatcher, order):
            order = await in_worker(
                db, lambda session: revoked_unit(session, order_id=order_id, now=clock())
            )
        async with db.session() as session:
            revoked = bool(
                await store_orders.flagged_among(session, order_ids=[order.id], kind=REVOKED_FLAG)
            )
        released = order.hold_released_at is not None
        LOG.info(
            "order cancelled by the driver: %s, revoked at the charger: %s, hold released: %s",
            order.status, revoked, released,
        )  # fmt: skip
    release_at = None if released else order.expires_at + timedelta(seconds=leeway_s)
    return DriverCancel(
        id=order.id,
        status=order.status,
        hold_released=released,
        hold_release_at=release_at,
        revoked_at_charger=revoked,
        hold_amount=order.hold_amount,
    )


async def revoke_at_charger(dispatcher: CommandDispatcher, order: Order) -> bool:
    """Whether the order's charger, if connected, stored the revocation of its token (the
    driver's cancel, and the operator's before it releases the hold)."""
    if order.charger_id not in await dispatcher.online([order.charger_id]):
        return False
    command = RevokeStartToken(order.id, int(order.expires_at.timestamp()))
    try:
        outcome = await dispatcher.send(order.charger_id, command)
    except CommandError as exc:
        LOG.warning("Revoke not delivered: %s", exc)
        return False
    if not outcome.accepted:
        LOG.info("Revoke answered %s: the hold waits for the token to expire", outcome.status)
    return outcome.accepted
