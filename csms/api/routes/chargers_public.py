"""Driver API: what the identification QR opens, ``GET /api/v1/chargers/{id}?evse=N``.

Anyone may ask (the page at ``/c/{id}`` shows the charger before sign-in); a signed-in driver
gets their own billing model, an anonymous visitor the one that applies to everybody. With the
dynamic identification code ``t`` (shown on the charger's screen), the code is checked against
the charger's presence secret: a wrong or stale code is a 403 with a reason, so the client can
ask the driver to scan the screen again.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from csms.api.deps import CtxDep, OptionalUser, SessionDep
from csms.api.responses import RefusalProblem, errors
from csms.billing.resolve import resolve
from csms.billing.schemas import TariffPublic, tariff_public
from csms.store import chargers as store
from csms.store.presence_secrets import get_presence_secret
from qr_extension import max_amount, verify_presence_code

router = APIRouter(prefix="/api/v1/chargers", tags=["drivers"])

PresenceState = Literal["verified", "not_given"]


class EvsePublic(BaseModel):
    evse_id: int
    status: str


class ChargerInfo(BaseModel):
    id: str
    location: str | None
    online: bool
    evses: list[EvsePublic]
    evse: EvsePublic | None
    billing_model: TariffPublic
    max_order_amount: int
    presence: PresenceState


def _forbidden(reason: str, message: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, {"reason": reason, "message": message})


@router.get(
    "/{charger_id}",
    response_model=ChargerInfo,
    responses=errors(
        401,
        403,
        404,
        notes={
            401: "an access token was sent, but it is not valid",
            403: "the screen code cannot be checked, or is wrong",
            404: "no such (accepted) charger, or no such EVSE",
        },
        models={403: RefusalProblem},
    ),
)
async def charger_info(
    charger_id: str,
    ctx: CtxDep,
    session: SessionDep,
    user: OptionalUser,
    evse: Annotated[int | None, Query(ge=0, le=64)] = None,
    t: Annotated[str | None, Query(max_length=16, description="dynamic code")] = None,
) -> ChargerInfo:
    """Charger id, location, online state, EVSE statuses and the caller's billing model."""
    charger = await store.get_charger(session, charger_id)
    if charger is None or charger.registration != "Accepted":
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no charger {charger_id!r}")
    if t is not None:
        await _check_presence(ctx, session, charger_id, t)
    by_evse: dict[int, str] = {}
    for row in await store.evses_of(session, charger_id):
        by_evse.setdefault(row.evse_id, row.status)  # the first connector speaks for the EVSE
    evses = [EvsePublic(evse_id=n, status=s) for n, s in sorted(by_evse.items()) if n > 0]
    chosen = None
    if evse is not None:
        chosen = next((e for e in evses if e.evse_id == evse), None)
        if chosen is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"charger {charger_id!r} has no EVSE {evse}"
            )
    resolved = await resolve(
        session,
        user_id=user.id if user is not None else None,
        charger_id=charger_id,
        settings=ctx.settings,
    )
    return ChargerInfo(
        id=charger.id,
        location=charger.location,
        online=charger.online,
        evses=evses,
        evse=chosen,
        billing_model=tariff_public(resolved.tariff),
        max_order_amount=max_amount(resolved.tariff, None, ctx.settings.max_order_amount),
        presence="verified" if t is not None else "not_given",
    )


async def _check_presence(ctx: CtxDep, session: SessionDep, charger_id: str, code: str) -> None:
    row = await get_presence_secret(session, charger_id)
    if row is None:
        raise _forbidden(
            "presence_not_configured",
            "this charger has no presence secret, so its screen code cannot be checked",
        )
    ok = verify_presence_code(
        bytes.fromhex(row.secret_hex),
        code,
        ctx.now_s(),
        step_s=ctx.settings.identification_step_s,
        digits=ctx.settings.identification_digits,
    )
    if not ok:
        raise _forbidden(
            "presence_code_invalid",
            "the code from the charger's screen is wrong or has expired: scan the screen again",
        )
