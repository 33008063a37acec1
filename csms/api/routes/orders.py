"""Driver API: orders.

``POST /api/v1/orders`` checks the wallet, places the hold, and returns the order with its
start token and the links to its QR (an ``Idempotency-Key`` header makes a retry find the
same order); ``GET /api/v1/orders[/{id}]`` is the driver's history
(one order also carries its live session while it runs); ``GET
/api/v1/orders/{id}/qr.svg|.png`` renders the start QR; ``POST
/api/v1/orders/{id}/remote-start`` asks a connected charger to start the same order (1.6
RemoteStartTransaction / 2.0.1 RequestStartTransaction with the order id as id tag); ``POST
/api/v1/orders/{id}/cancel`` cancels an order not yet used, revokes its start token at the
charger when it is connected, and says when the hold comes back. Another driver's order is
404.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.api.deps import CtxDep, CurrentUser, SessionDep
from csms.api.params import Offset
from csms.api.responses import BODY, errors
from csms.commands import StartCharging
from csms.errors import CommandError
from csms.payments.driver_cancel import cancel_for_driver
from csms.payments.errors import InsufficientFunds
from csms.payments.lifecycle import OrderState
from csms.payments.live import live_session
from csms.payments.order_errors import InvalidOrderRequest, OrderNotCancellable, OrderNotFound
from csms.payments.orders import OrderRequest, get_order, place_order
from csms.payments.schemas import (
    LivePublic,
    OrderCreate,
    OrderPublic,
    new_order_public,
    order_public,
)
from csms.store import orders as store_orders
from csms.store.models_orders import ORDER_KEY_MAX, Order
from qr_extension.qr import render_png, render_svg


class Shortfall(BaseModel):
    message: str
    available: int = Field(description="what the wallet has, minor units")
    needed: int = Field(description="what the hold needs, minor units")


class FundsProblem(BaseModel):
    """402: the wallet cannot cover the order's hold."""

    detail: Shortfall


class CancelPublic(BaseModel):
    """The order after the driver's cancel, and what became of its hold."""

    id: str
    status: str = Field(description="cancelled (hold released) or cancelling (hold kept)")
    hold_released: bool = Field(description="the hold is back in the wallet")
    hold_release_at: datetime | None = Field(
        description="when the hold comes back at the earliest (exp + leeway, then the "
        "charger's next Synced); null once released"
    )
    revoked_at_charger: bool = Field(description="the charger stored the revocation")
    hold_amount: int = Field(description="the order's hold, minor units")


router = APIRouter(prefix="/api/v1/orders", tags=["orders"], responses=errors(401))

IdempotencyKey = Annotated[
    str | None,
    Header(
        description=f"1 to {ORDER_KEY_MAX} printable ASCII characters, the driver's own for "
        "this order (a UUID): a repeat finds the order the first request placed"
    ),
]
REPLAYED = "Idempotent-Replayed"


async def _own_order(session: SessionDep, order_id: str, user_id: int) -> Order:
    try:
        return await get_order(session, order_id, user_id=user_id)
    except OrderNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


def _user_id(user: CurrentUser) -> int:
    assert user.id is not None
    return user.id


@router.post(
    "",
    response_model=OrderPublic,
    status_code=status.HTTP_201_CREATED,
    responses=BODY
    | errors(
        402,
        409,
        models={402: FundsProblem},
        notes={409: "the Idempotency-Key placed an order for another request"},
    )
    | {
        201: {
            "headers": {
                REPLAYED: {
                    "description": "`true` when the Idempotency-Key found the order an "
                    "earlier request placed (nothing was placed now)",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            }
        }
    },
)
async def post_order(
    body: OrderCreate,
    user: CurrentUser,
    ctx: CtxDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OrderPublic:
    """Places a hold of ``lim.amt`` and returns the order with its signed start token.

    402 when the wallet cannot cover the hold, 422 for an unknown charger or EVSE or a request
    that is not exactly one of energy_wh, amount, duration_s, full, or a malformed
    ``Idempotency-Key``.

    With an ``Idempotency-Key``, a repeat of the request (a retry after a lost answer) places
    nothing: it answers 201 with the order the first request placed, as ``GET
    /api/v1/orders/{id}`` shows it now, and the header ``Idempotent-Replayed: true``. The same
    key with another body (charger, EVSE, what is asked for) is 409 ``idempotency_conflict``.
    Keys are the driver's own: another driver's same key is another order.
    """
    request = OrderRequest(**body.model_dump())
    try:
        placed = await place_order(
            ctx.db,
            user_id=_user_id(user),
            request=request,
            settings=ctx.settings,
            keys=ctx.keys,
            now=ctx.clock(),
            idempotency_key=idempotency_key,
        )
    except InsufficientFunds as exc:
        raise HTTPException(
            status.HTTP_402_PAYMENT_REQUIRED,
            {"message": str(exc), "available": exc.available, "needed": exc.needed},
        ) from exc
    except InvalidOrderRequest as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if not placed.replayed:
        return new_order_public(placed.order)
    response.headers[REPLAYED] = "true"
    async with ctx.db.session() as session:
        return await _read(session, placed.order)


@router.get("", response_model=list[OrderPublic])
async def get_orders(
    user: CurrentUser,
    session: SessionDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[OrderPublic]:
    """The driver's orders, newest first."""
    orders = await store_orders.list_orders(
        session, user_id=_user_id(user), offset=offset, limit=limit
    )
    return [await order_public(session, o) for o in orders]


@router.get("/{order_id}", response_model=OrderPublic, responses=errors(404))
async def get_one(order_id: str, user: CurrentUser, session: SessionDep) -> OrderPublic:
    """The order; a started one also carries ``live``: the energy and cost so far from the
    charger's latest meter reading, and when it was taken."""
    return await _read(session, await _own_order(session, order_id, _user_id(user)))


async def _read(session: AsyncSession, order: Order) -> OrderPublic:
    """The order as it stands, its live session included."""
    public = await order_public(session, order)
    live = await live_session(session, order)
    if live is not None:
        public.live = LivePublic(energy_wh=live.energy_wh, amount=live.amount, read_at=live.read_at)
    return public


@router.get("/{order_id}/qr.svg", response_class=Response, responses=errors(404))
async def qr_svg(order_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """The start QR as SVG (what the driver shows to the charger's camera)."""
    order = await _own_order(session, order_id, _user_id(user))
    svg = await asyncio.to_thread(render_svg, order.start_token)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get("/{order_id}/qr.png", response_class=Response, responses=errors(404))
async def qr_png(order_id: str, user: CurrentUser, session: SessionDep) -> Response:
    order = await _own_order(session, order_id, _user_id(user))
    png = await asyncio.to_thread(render_png, order.start_token)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post(
    "/{order_id}/remote-start",
    responses=errors(
        404,
        409,
        notes={
            409: "the charger is not connected, the order is not startable, or the charger refused"
        },
    ),
)
async def remote_start(
    order_id: str, user: CurrentUser, ctx: CtxDep, session: SessionDep
) -> dict[str, Any]:
    """Asks the (connected) charger to start this order; 409 when it is not connected, the
    order is no longer startable, or the charger rejects it."""
    order = await _own_order(session, order_id, _user_id(user))
    if order.status != OrderState.CREATED:
        raise HTTPException(status.HTTP_409_CONFLICT, f"order {order.id} is {order.status}")
    if ctx.clock() > order.expires_at:
        raise HTTPException(status.HTTP_409_CONFLICT, f"order {order.id} has expired")
    # from now on the CSMS enforces the order's limits: the charger has no token
    await store_orders.set_remote_started(
        session, order_id=order.id, at=order.remote_started_at or ctx.clock()
    )
    try:
        outcome = await ctx.dispatcher.send(
            order.charger_id, StartCharging(order.id, evse_id=order.evse_id)
        )
    except CommandError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"remote start failed: {exc}") from exc
    if not outcome.accepted:
        because = f" ({outcome.reason})" if outcome.reason else ""
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"the charger answered {outcome.status}{because}"
        )
    return {"order_id": order.id, "action": outcome.action, "status": outcome.status}


@router.post(
    "/{order_id}/cancel",
    response_model=CancelPublic,
    responses=errors(
        404, 409, notes={409: "the order was already started, settled, paid or expired"}
    ),
)
async def cancel(order_id: str, user: CurrentUser, ctx: CtxDep) -> CancelPublic:
    """Cancels an order that no charger has started yet. When its charger is connected, the
    start token is revoked there first (DataTransfer ``Revoke``); a charger that stored the
    revocation lets the hold go back at once. Otherwise the hold comes back once the token
    can no longer start anything (``hold_release_at``, then the charger's next ``Synced``).
    Repeating the cancel answers the order as it stands (and tries the revocation again while
    the hold is kept)."""
    try:
        done = await cancel_for_driver(
            ctx.db,
            ctx.dispatcher,
            order_id=order_id,
            user_id=_user_id(user),
            clock=ctx.clock,
            leeway_s=ctx.settings.token_leeway_s,
        )
    except OrderNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except OrderNotCancellable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return CancelPublic(
        id=done.id,
        status=done.status,
        hold_released=done.hold_released,
        hold_release_at=done.hold_release_at,
        revoked_at_charger=done.revoked_at_charger,
        hold_amount=done.hold_amount,
    )
