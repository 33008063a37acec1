"""Operator API: billing models (CRUD), their assignments, and which model applies where.

Editing a model changes the price of orders created afterwards only: every order keeps the
exact tariff it signed, and its cost is recomputed from that. The configured default
(``default_tariff_*``) is shown at ``/default`` and applies wherever nothing is assigned.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from csms.api.audit import READ_ONLY, add_details
from csms.api.deps import AdminOnlyDep, CtxDep, SessionDep, ViewerDep
from csms.api.params import Offset, RowIdPath, RowIdQuery
from csms.api.responses import BODY, errors
from csms.billing import service
from csms.billing.resolve import default_tariff, resolve
from csms.billing.schemas import (
    AssignmentCreate,
    AssignmentPublic,
    BillingModelCreate,
    BillingModelPublic,
    BillingModelUpdate,
    TariffFields,
    TariffPublic,
    model_public,
    tariff_public,
    to_tariff,
)
from csms.store import billing as store
from csms.store.models_money import BillingAssignment
from qr_extension import compute_cost, merge_usage, split_usage

router = APIRouter(prefix="/api/v1/admin", tags=["admin: billing"], responses=errors(401, 403))
Limit = Annotated[int, Query(ge=1, le=1000)]


class ResolvedPublic(TariffPublic):
    scope: str


MAX_SAMPLE_MIN = 7 * 24 * 60  # a week of charging or parking: anything longer is a typo
MAX_SAMPLE_WH = 10_000_000  # 10 MWh


class PreviewRequest(TariffFields):
    """A tariff (the fields of a billing model, saved or not) and a sample session: it charges
    ``energy_wh`` over ``charging_min`` minutes from ``start`` (UTC), then stays plugged in
    ``idle_min`` minutes."""

    start: datetime = Field(description="when charging starts (UTC if no offset is given)")
    charging_min: int = Field(ge=0, le=MAX_SAMPLE_MIN)
    energy_wh: int = Field(ge=0, le=MAX_SAMPLE_WH)
    idle_min: int = Field(default=0, ge=0, le=MAX_SAMPLE_MIN)


class PreviewAnswer(BaseModel):
    """The sample session's cost as the charger and the CSMS compute it: the exact parts in
    currency units (decimal strings) and the total in minor units, rounded once."""

    currency: str
    fixed: str
    energy: str
    time: str
    idle: str
    total: int
    capped: bool


def _audit_prices(request: Request, model: BillingModelPublic) -> None:
    """The prices a create or an update leaves the model with, in its audit record."""
    add_details(
        request,
        currency=model.currency,
        fixed_fee=model.fixed_fee,
        energy_price=model.energy_price,
        time_price=model.time_price,
        idle_price=model.idle_price,
        cap=model.cap,
        version=model.version,
    )


def _assignment(row: BillingAssignment) -> AssignmentPublic:
    return AssignmentPublic.model_validate(row, from_attributes=True)


@router.post(
    "/billing-models",
    status_code=status.HTTP_201_CREATED,
    response_model=BillingModelPublic,
    responses=BODY | errors(409, notes={409: "the id is taken"}),
)
async def create_model(
    body: BillingModelCreate, request: Request, ctx: CtxDep, session: SessionDep, _: AdminOnlyDep
) -> BillingModelPublic:
    """Adds a billing model (422 if the prices do not make a valid tariff, 409 if the id is
    taken)."""
    model = await service.create_model(
        session, body=body, reserved_id=ctx.settings.default_tariff_id, now=ctx.clock()
    )
    public = model_public(model)
    _audit_prices(request, public)
    return public


@router.post(
    "/billing-models/preview",
    response_model=PreviewAnswer,
    responses=BODY,
    openapi_extra=READ_ONLY,
)
async def preview_cost(body: PreviewRequest, _: ViewerDep) -> PreviewAnswer:
    """What a sample session would cost with these prices, computed by the same function the
    chargers and the settlement use (422 if the prices do not make a valid tariff). A read:
    it changes nothing, so every role may ask and the audit log leaves it out."""
    tariff = to_tariff("preview", body)
    start = body.start if body.start.tzinfo else body.start.replace(tzinfo=UTC)
    try:
        stop = start + timedelta(minutes=body.charging_min)
        parked = stop + timedelta(minutes=body.idle_min)
    except OverflowError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "the sample session ends after year 9999"
        ) from exc
    usage = merge_usage(
        split_usage(tariff, start.timestamp(), stop.timestamp(), body.energy_wh, idle=False),
        split_usage(tariff, stop.timestamp(), parked.timestamp(), 0, idle=True),
    )
    cost = compute_cost(tariff, usage)
    return PreviewAnswer(
        currency=tariff.currency,
        fixed=str(cost.fixed),
        energy=str(cost.energy),
        time=str(cost.time),
        idle=str(cost.idle),
        total=cost.total,
        capped=cost.capped,
    )


@router.get("/billing-models", response_model=list[BillingModelPublic])
async def list_models(
    session: SessionDep, _: ViewerDep, offset: Offset = 0, limit: Limit = 100
) -> list[BillingModelPublic]:
    return [model_public(m) for m in await store.list_models(session, offset=offset, limit=limit)]


@router.get("/billing-models/default", response_model=TariffPublic)
async def default_model(ctx: CtxDep, _: ViewerDep) -> TariffPublic:
    """The configured default billing model (read-only: change the settings)."""
    return tariff_public(default_tariff(ctx.settings))


@router.get("/billing-models/resolve", response_model=ResolvedPublic)
async def resolve_model(
    ctx: CtxDep, session: SessionDep, _: ViewerDep, charger_id: str, user_id: RowIdQuery = None
) -> ResolvedPublic:
    """Which model a driver (or an anonymous visitor) gets at a charger, and why (``scope``)."""
    found = await resolve(session, user_id=user_id, charger_id=charger_id, settings=ctx.settings)
    return ResolvedPublic(**tariff_public(found.tariff).model_dump(), scope=found.scope)


@router.get("/billing-models/{model_id}", response_model=BillingModelPublic, responses=errors(404))
async def show_model(model_id: str, session: SessionDep, _: ViewerDep) -> BillingModelPublic:
    return model_public(await service.get_model(session, model_id))


@router.put(
    "/billing-models/{model_id}", response_model=BillingModelPublic, responses=BODY | errors(404)
)
async def update_model(
    model_id: str,
    body: BillingModelUpdate,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    _: AdminOnlyDep,
) -> BillingModelPublic:
    """Replaces the prices (``version`` + 1); orders already issued keep their snapshot."""
    model = await service.update_model(session, model_id=model_id, body=body, now=ctx.clock())
    public = model_public(model)
    _audit_prices(request, public)
    return public


@router.delete(
    "/billing-models/{model_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(404, 409, notes={409: "the model is assigned"}),
)
async def delete_model(model_id: str, session: SessionDep, _: AdminOnlyDep) -> None:
    """Deletes an unassigned model (409 while it is assigned)."""
    await service.delete_model(session, model_id=model_id)


@router.post(
    "/billing-models/{model_id}/assignments",
    status_code=status.HTTP_201_CREATED,
    response_model=AssignmentPublic,
    responses=BODY | errors(404, 409, notes={409: "that target has a model"}),
)
async def assign_model(
    model_id: str,
    body: AssignmentCreate,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    _: AdminOnlyDep,
) -> AssignmentPublic:
    """Assigns the model to a driver (tier, fleet), a driver at one charger, a charger, or a
    site (charger ``location``). 409 if that target has a model: delete it first."""
    add_details(request, user_id=body.user_id, charger_id=body.charger_id, site=body.site)
    row = await service.create_assignment(session, model_id=model_id, target=body, now=ctx.clock())
    return _assignment(row)


@router.get(
    "/billing-models/{model_id}/assignments",
    response_model=list[AssignmentPublic],
    responses=errors(404),
)
async def model_assignments(
    model_id: str, session: SessionDep, _: ViewerDep, offset: Offset = 0, limit: Limit = 100
) -> list[AssignmentPublic]:
    await service.get_model(session, model_id)
    rows = await store.list_assignments(session, model_id=model_id, offset=offset, limit=limit)
    return [_assignment(r) for r in rows]


@router.get("/billing-assignments", response_model=list[AssignmentPublic])
async def list_assignments(
    session: SessionDep,
    _: ViewerDep,
    user_id: RowIdQuery = None,
    charger_id: str | None = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> list[AssignmentPublic]:
    rows = await store.list_assignments(
        session, user_id=user_id, charger_id=charger_id, offset=offset, limit=limit
    )
    return [_assignment(r) for r in rows]


@router.delete(
    "/billing-assignments/{assignment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(404),
)
async def delete_assignment(assignment_id: RowIdPath, session: SessionDep, _: AdminOnlyDep) -> None:
    await service.delete_assignment(session, assignment_id=assignment_id)
