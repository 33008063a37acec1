"""Creating orders and reading them back: request -> ``lim.amt`` -> hold -> signed start token.

An order is: the billing model that applies to this driver at this
charger, the limits of the request with ``lim.amt = max_amount(tariff, request, configured
maximum)``, a hold of exactly ``lim.amt`` on the driver's wallet, and a start token signed by
the CSMS's active key. The order row keeps the exact ``tar`` and ``lim`` claims it signed: every
later settlement is recomputed from them, never from a billing model edited since.

All of it is one synchronous unit of work (:func:`order_unit`), which :func:`place_order` runs
in one hop; so is the operator's cancel (:func:`cancel_unit`), whose step the driver's
cancel (:mod:`csms.payments.driver_cancel`) shares (:func:`cancel_step`). The rows are
written and read by :mod:`csms.store.orders`.

A driver's ``Idempotency-Key`` makes the order once: the unit first looks for the driver's
order of that key and hands it back (the same request) or refuses the key
(IdempotencyConflict: another request); otherwise the key is stored on the new order. The
unique index on ``(user_id, idempotency_key)`` decides a race: the loser's insert fails, its
unit runs again and finds the winner's order (no second order, no second hold).
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from config.logs import bind
from config.settings import Settings
from csms.keys import KeyManager
from csms.payments import postings, tariffs
from csms.payments.errors import IdempotencyConflict, InvalidKey
from csms.payments.lifecycle import OrderEvent, OrderState, next_order_state
from csms.payments.order_errors import InvalidOrderRequest, OrderNotFound
from csms.store import orders as store_orders
from csms.store.db import Database
from csms.store.models_orders import ORDER_KEY_MAX, Order
from csms.store.rows import with_defaults
from csms.store.units_of_work import Conflict, in_worker
from qr_extension.keys import SigningKey
from qr_extension.start import StartAuthorization, issue_start_token
from qr_extension.tariff import (
    Limits,
    Tariff,
    limits_from_claim,
    limits_to_claim,
    max_amount,
    tariff_from_claim,
    tariff_to_claim,
)

LOG = logging.getLogger("csms.orders")

ORDER_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ORDER_ID_LENGTH = 12  # 36^12 ~ 2^62; at most 15 for the QR budget (docs/protocol.md)


def new_order_id() -> str:
    """A fresh order id of ``[A-Z0-9]`` from the operating system's CSPRNG: a random number
    below ``36 ** ORDER_ID_LENGTH`` (one draw, not one per character) in base 36."""
    number = secrets.randbelow(len(ORDER_ID_ALPHABET) ** ORDER_ID_LENGTH)
    digits = []
    for _ in range(ORDER_ID_LENGTH):
        number, digit = divmod(number, len(ORDER_ID_ALPHABET))
        digits.append(ORDER_ID_ALPHABET[digit])
    return "".join(digits)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What the driver asks for: exactly one of energy, amount, duration or "until full"."""

    charger_id: str
    evse_id: int | None = None
    energy_wh: int | None = None
    amount: int | None = None
    duration_s: int | None = None
    full: bool = False

    def kind(self) -> tuple[str, int | None]:
        given: list[tuple[str, int | None]] = [
            (name, value)
            for name, value in (
                ("energy", self.energy_wh),
                ("amount", self.amount),
                ("duration", self.duration_s),
            )
            if value is not None
        ]
        if self.full:
            given.append(("full", None))
        if len(given) != 1:
            raise InvalidOrderRequest(
                "give exactly one of energy_wh, amount, duration_s or full=true"
            )
        name, value = given[0]
        if value is not None and (type(value) is not int or value < 1):
            raise InvalidOrderRequest(f"{name} must be a positive integer")
        return given[0]


@dataclass(frozen=True, slots=True)
class Placed:
    """An order and whether this request found it by its Idempotency-Key (``replayed``)
    rather than placing it."""

    order: Order
    replayed: bool = False


def check_key(key: str) -> None:
    """InvalidKey unless ``key`` is a valid Idempotency-Key: 1..ORDER_KEY_MAX printable
    ASCII characters."""
    if not 1 <= len(key) <= ORDER_KEY_MAX:
        raise InvalidKey(
            f"an Idempotency-Key is 1 to {ORDER_KEY_MAX} characters long, not {len(key)}"
        )
    if not (key.isascii() and key.isprintable()):
        raise InvalidKey("an Idempotency-Key is printable ASCII characters only")


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _check_charger(session: Session, charger_id: str, evse_id: int | None) -> None:
    """The charger is registered and has the EVSE."""
    found = store_orders.charger_check(session, charger_id=charger_id, evse_id=evse_id)
    if found is None or found[0] != "Accepted":
        raise InvalidOrderRequest(f"unknown charger {charger_id!r}")
    if evse_id is not None and found[1] is None:
        raise InvalidOrderRequest(f"charger {charger_id!r} has no EVSE {evse_id}")


def _replay(order: Order, request: OrderRequest, idempotency_key: str) -> Order:
    """``order``, found by the driver's ``idempotency_key``, if it was placed for the same
    request (charger, EVSE, what was asked for); else IdempotencyConflict."""
    kind, value = request.kind()
    asked = (request.charger_id, request.evse_id, kind, value)
    placed = (order.charger_id, order.evse_id, order.request_kind, order.request_value)
    if placed != asked:
        what = order.request_kind
        if order.request_value is not None:
            what = f"{what} {order.request_value}"
        where = order.charger_id
        if order.evse_id is not None:
            where = f"{where} EVSE {order.evse_id}"
        raise IdempotencyConflict(
            idempotency_key, f"order {order.id} ({what} at {where}), not this request"
        )
    return order


def _new_order(
    *,
    user_id: int,
    request: OrderRequest,
    tariff: Tariff,
    settings: Settings,
    key: SigningKey,
    now: datetime,
    idempotency_key: str | None,
) -> dict[str, object]:
    """The order's columns: its limits, hold amount and signed start token (pure)."""
    kind, value = request.kind()
    amount = max_amount(tariff, request.amount, settings.max_order_amount)
    if amount < 1:
        raise InvalidOrderRequest("the order's maximum amount is zero (cap or configuration)")
    limits = Limits(amount=amount, energy_wh=request.energy_wh, duration_s=request.duration_s)
    issued = _epoch(now)
    order_id = new_order_id()
    token = issue_start_token(
        key=key,
        charge_point_id=request.charger_id,
        order_id=order_id,
        evse_id=request.evse_id,
        tariff=tariff,
        limits=limits,
        issued_at=issued,
        validity_s=settings.start_token_validity_s,
    )
    return with_defaults(
        Order,
        {
            "id": order_id,
            "user_id": user_id,
            "charger_id": request.charger_id,
            "evse_id": request.evse_id,
            "status": OrderState.CREATED.value,
            "request_kind": kind,
            "request_value": value,
            "tariff_claim": json.dumps(tariff_to_claim(tariff), separators=(",", ":")),
            "limits_claim": json.dumps(limits_to_claim(limits), separators=(",", ":")),
            "hold_amount": amount,
            "currency": tariff.currency,
            "start_token": token,
            "kid": key.kid,
            "issued_at": datetime.fromtimestamp(issued, UTC),
            "expires_at": datetime.fromtimestamp(issued + settings.start_token_validity_s, UTC),
            "created_at": now,
            "updated_at": now,
            "idempotency_key": idempotency_key,
        },
    )


def order_unit(
    session: Session,
    /,
    *,
    user_id: int,
    request: OrderRequest,
    settings: Settings,
    key: SigningKey,
    now: datetime,
    idempotency_key: str | None = None,
) -> Placed:
    """The unit of work of an order (synchronous, does not commit): checks the charger and
    EVSE, reads the billing model, signs the start token with ``key``, inserts the order and
    places its hold. Raises InvalidOrderRequest, or InsufficientFunds (the caller rolls back:
    nothing is stored then).

    With an ``idempotency_key`` the driver's order of that key, if there is one, is handed
    back instead (``replayed``), nothing written; IdempotencyConflict if it was placed for
    another request. Two units racing with one key: the second insert breaks the unique
    index, and the unit's retry finds the first order."""
    charger_id = request.charger_id
    # the unit's reads go out in one round trip where writes are pipelined (PostgreSQL)
    tariffs.billing_model_ahead(session, user_id=user_id, charger_id=charger_id)
    if idempotency_key is not None:
        store_orders.charger_check_ahead(session, charger_id=charger_id, evse_id=request.evse_id)
        found = store_orders.order_of_key(session, user_id=user_id, key=idempotency_key)
        if found is not None:
            return Placed(_replay(found, request, idempotency_key), replayed=True)
    _check_charger(session, charger_id, request.evse_id)
    tariff = tariffs.billing_model(
        session, user_id=user_id, charger_id=charger_id, settings=settings
    )
    values = _new_order(
        user_id=user_id, request=request, tariff=tariff, settings=settings, key=key, now=now,
        idempotency_key=idempotency_key,
    )  # fmt: skip
    order = store_orders.insert_order(session, values=values)
    postings.place_hold(
        session, user_id=user_id, order_id=order.id, amount=order.hold_amount,
        key=f"hold:{order.id}",
    )  # fmt: skip
    return Placed(order)


async def place_order(
    db: Database,
    *,
    user_id: int,
    request: OrderRequest,
    settings: Settings,
    keys: KeyManager,
    now: datetime,
    idempotency_key: str | None = None,
) -> Placed:
    """Creates the order, places its hold and signs its start token, in one unit of work in
    the database thread (committed when this returns); or, with the driver's
    ``idempotency_key``, finds the order a first request with that key placed.

    Raises InvalidOrderRequest, InvalidKey (a malformed key), IdempotencyConflict (the key
    placed an order for another request), or the wallet's InsufficientFunds (nothing is
    stored then).
    """
    request.kind()  # a malformed request is refused before the database is asked
    if idempotency_key is not None:
        check_key(idempotency_key)
    key = keys.active_signing_key(_epoch(now))
    placed = await in_worker(
        db,
        lambda session: order_unit(
            session, user_id=user_id, request=request, settings=settings, key=key, now=now,
            idempotency_key=idempotency_key,
        ),
    )  # fmt: skip
    order = placed.order
    with bind(order_id=order.id, charger_id=order.charger_id):
        if placed.replayed:
            LOG.info("order found again by its Idempotency-Key")
        else:
            LOG.info("order placed for EVSE %s, hold %s", order.evse_id, order.hold_amount)
    return placed


def release_unused(
    session: Session, /, *, order: Order, new_status: OrderState, now: datetime
) -> int | None:
    """Moves ``order`` from the status it was read in to ``new_status`` (cancelled, expired),
    stamps ``hold_released_at`` and returns what is left of its hold to the wallet (key
    ``release:{order}``); the amount released. None, and nothing done, when its status
    changed since the read."""
    stepped = store_orders.step_order(
        session, order_id=order.id, old_status=order.status, new_status=new_status.value,
        now=now, values={"hold_released_at": now},
    )  # fmt: skip
    if not stepped:
        return None
    key = f"release:{order.id}"
    return postings.release(session, user_id=order.user_id, order_id=order.id, key=key)


def cancel_step(
    session: Session, /, *, order: Order, event: OrderEvent, now: datetime, by: str
) -> tuple[OrderState, int]:
    """Cancels ``order`` as read (synchronous, does not commit): ``cancel`` releases its hold
    now, ``withdraw`` (the driver's, while the charger may still hold the token) keeps it for
    the reaper; the order is flagged ``cancelled`` ``by`` whom. The new state and the amount
    released. IllegalTransition when the order can no longer take ``event``; Conflict (run
    again) when it changed since the read."""
    new = next_order_state(order.status, event)
    if event is OrderEvent.WITHDRAW:
        released: int | None = 0
        if not store_orders.step_order(
            session, order_id=order.id, old_status=order.status, new_status=new.value,
            now=now, values={},
        ):  # fmt: skip
            released = None
    else:
        released = release_unused(session, order=order, new_status=new, now=now)
    if released is None:
        raise Conflict(f"order {order.id} changed meanwhile")
    store_orders.add_flag(session, order_id=order.id, kind="cancelled", detail=by)
    return new, released


def cancel_unit(session: Session, /, *, order_id: str, now: datetime) -> tuple[OrderState, int]:
    """The operator's cancel (synchronous, does not commit): the order's next state and the
    amount of its hold released; the order is flagged ``cancelled``. OrderNotFound;
    IllegalTransition when the order can no longer be cancelled; Conflict (run again) when
    it changed meanwhile."""
    order = store_orders.order_row(session, order_id=order_id)
    if order is None:
        raise OrderNotFound(f"no order {order_id!r}")
    return cancel_step(session, order=order, event=OrderEvent.CANCEL, now=now, by="by the operator")


async def cancel_unsettled(db: Database, *, order_id: str, now: datetime) -> tuple[OrderState, int]:
    """Cancels an order that was never settled and releases its hold, in one unit of work
    (committed when this returns); the order's new state and the amount released. A
    settlement that still arrives is honoured as a debt and flagged."""
    return await in_worker(db, lambda session: cancel_unit(session, order_id=order_id, now=now))


def snapshot(order: Order) -> StartAuthorization:
    """The start authorization exactly as signed: what a settlement must match."""
    return StartAuthorization(
        order_id=order.id,
        charge_point_id=order.charger_id,
        evse_id=order.evse_id,
        issued_at=_epoch(order.issued_at),
        expires_at=_epoch(order.expires_at),
        limits=_limits(order.limits_claim),
        tariff=_tariff(order.tariff_claim),
        kid=order.kid,
    )


# The stored claim texts repeat (one per billing model, a few per request shape), and their
# parsed forms are frozen values: parsed once per text, as the text fixes them.
@lru_cache(maxsize=1024)
def _tariff(text: str) -> Tariff:
    return tariff_from_claim(json.loads(text))


@lru_cache(maxsize=1024)
def _limits(text: str) -> Limits:
    return limits_from_claim(json.loads(text))


async def get_order(session: AsyncSession, order_id: str, *, user_id: int | None) -> Order:
    """The order; OrderNotFound when it does not exist or ``user_id`` does not own it."""
    order = await store_orders.get_order(session, order_id=order_id)
    if order is None or (user_id is not None and order.user_id != user_id):
        raise OrderNotFound(f"no order {order_id!r}")
    return order
