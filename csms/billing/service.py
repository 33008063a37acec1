"""Billing models and their assignments as the operator manages them: the checks before a
write and the errors of :mod:`csms.billing.errors` (the rows are :mod:`csms.store.billing`'s).

The functions that change something commit.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from csms.billing.errors import (
    AssignmentExists,
    AssignmentInvalid,
    BillingModelExists,
    BillingModelInUse,
    BillingModelNotFound,
)
from csms.billing.resolve import charger_scope, site_scope, user_charger_scope, user_scope
from csms.billing.schemas import (
    AssignmentCreate,
    BillingModelCreate,
    BillingModelUpdate,
    TariffFields,
    to_tariff,
)
from csms.store import billing as store
from csms.store.chargers import get_charger
from csms.store.drivers import get_user
from csms.store.models_money import BillingAssignment, BillingModel


def _priced(fields: TariffFields) -> dict[str, object]:
    return {
        "currency": fields.currency,
        "fixed_fee": fields.fixed_fee,
        "energy_price": fields.energy_price,
        "time_price": fields.time_price,
        "idle_price": fields.idle_price,
        "idle_grace_min": fields.idle_grace_min,
        "tou": json.dumps([list(p.model_dump().values()) for p in fields.tou]),
        "tz_offset_min": fields.tz_offset_min,
        "cap": fields.cap,
    }


async def get_model(session: AsyncSession, model_id: str) -> BillingModel:
    model = await store.get_model(session, model_id)
    if model is None:
        raise BillingModelNotFound(f"no billing model {model_id!r}")
    return model


async def create_model(
    session: AsyncSession, *, body: BillingModelCreate, reserved_id: str, now: datetime
) -> BillingModel:
    """Adds a billing model; ``reserved_id`` (the configured default's) may not be reused."""
    to_tariff(body.id, body)  # BillingModelInvalid before anything is written
    if body.id == reserved_id:
        raise BillingModelExists(f"{body.id!r} is the configured default billing model's id")
    model = BillingModel(
        id=body.id, name=body.name, currency=body.currency, created_at=now, updated_at=now
    )
    for name, value in _priced(body).items():
        setattr(model, name, value)
    if not await store.add_model(session, model):
        raise BillingModelExists(f"billing model {body.id!r} exists")
    return model


async def update_model(
    session: AsyncSession, *, model_id: str, body: BillingModelUpdate, now: datetime
) -> BillingModel:
    """Replaces the priced fields and bumps ``version``; issued orders keep their snapshot."""
    to_tariff(model_id, body)
    model = await get_model(session, model_id)
    for name, value in _priced(body).items():
        setattr(model, name, value)
    model.name = body.name
    model.version += 1
    model.updated_at = now
    await store.save_model(session, model)
    return model


async def delete_model(session: AsyncSession, *, model_id: str) -> None:
    model = await get_model(session, model_id)
    if await store.assignment_count(session, model_id=model_id):
        raise BillingModelInUse(f"billing model {model_id!r} is assigned; unassign it first")
    await store.delete_model(session, model)


def scope_of(target: AssignmentCreate) -> str:
    """The canonical scope of an assignment target; AssignmentInvalid for other shapes."""
    user, charger, site = target.user_id, target.charger_id, target.site
    if site is not None:
        if user is not None or charger is not None:
            raise AssignmentInvalid("a site assignment names only the site")
        return site_scope(site)
    if user is not None and charger is not None:
        return user_charger_scope(user, charger)
    if user is not None:
        return user_scope(user)
    if charger is not None:
        return charger_scope(charger)
    raise AssignmentInvalid("name a user_id, a user_id and a charger_id, a charger_id or a site")


async def create_assignment(
    session: AsyncSession, *, model_id: str, target: AssignmentCreate, now: datetime
) -> BillingAssignment:
    """Assigns the model to the target (which must exist); AssignmentExists if the target has
    a model already (delete that assignment first: no silent replacement of a price)."""
    scope = scope_of(target)
    await get_model(session, model_id)
    if target.user_id is not None and await get_user(session, target.user_id) is None:
        raise AssignmentInvalid(f"no user {target.user_id}")
    if target.charger_id is not None and await get_charger(session, target.charger_id) is None:
        raise AssignmentInvalid(f"no charger {target.charger_id!r}")
    row = BillingAssignment(
        scope=scope,
        billing_model_id=model_id,
        user_id=target.user_id,
        charger_id=target.charger_id,
        site=target.site,
        created_at=now,
    )
    if not await store.add_assignment(session, row):
        raise AssignmentExists(f"{scope} already has a billing model")
    return row


async def delete_assignment(session: AsyncSession, *, assignment_id: int) -> None:
    if not await store.delete_assignment(session, assignment_id=assignment_id):
        raise BillingModelNotFound(f"no billing assignment {assignment_id}")
