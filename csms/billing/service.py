"""Database functions for billing models and their assignments (keyword-only, async).

The functions that change something commit; errors are :mod:`csms.billing.errors`.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
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
from csms.store.models import Charger
from csms.store.models_money import BillingAssignment, BillingModel, User


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
    model = await session.get(BillingModel, model_id)
    if model is None:
        raise BillingModelNotFound(f"no billing model {model_id!r}")
    return model


async def list_models(
    session: AsyncSession, *, offset: int = 0, limit: int = 100
) -> list[BillingModel]:
    rows = await session.exec(
        select(BillingModel).order_by(col(BillingModel.id)).offset(offset).limit(limit)
    )
    return list(rows.all())


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
    session.add(model)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise BillingModelExists(f"billing model {body.id!r} exists") from exc
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
    session.add(model)
    await session.commit()
    return model


async def delete_model(session: AsyncSession, *, model_id: str) -> None:
    model = await get_model(session, model_id)
    used = await session.exec(
        select(func.count())
        .select_from(BillingAssignment)
        .where(col(BillingAssignment.billing_model_id) == model_id)
    )
    if used.one():
        raise BillingModelInUse(f"billing model {model_id!r} is assigned; unassign it first")
    await session.delete(model)
    await session.commit()


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
    if target.user_id is not None and await session.get(User, target.user_id) is None:
        raise AssignmentInvalid(f"no user {target.user_id}")
    if target.charger_id is not None and await session.get(Charger, target.charger_id) is None:
        raise AssignmentInvalid(f"no charger {target.charger_id!r}")
    row = BillingAssignment(
        scope=scope,
        billing_model_id=model_id,
        user_id=target.user_id,
        charger_id=target.charger_id,
        site=target.site,
        created_at=now,
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise AssignmentExists(f"{scope} already has a billing model") from exc
    return row


async def list_assignments(
    session: AsyncSession,
    *,
    model_id: str | None = None,
    user_id: int | None = None,
    charger_id: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[BillingAssignment]:
    query = select(BillingAssignment)
    if model_id is not None:
        query = query.where(col(BillingAssignment.billing_model_id) == model_id)
    if user_id is not None:
        query = query.where(col(BillingAssignment.user_id) == user_id)
    if charger_id is not None:
        query = query.where(col(BillingAssignment.charger_id) == charger_id)
    rows = await session.exec(query.order_by(col(BillingAssignment.id)).offset(offset).limit(limit))
    return list(rows.all())


async def delete_assignment(session: AsyncSession, *, assignment_id: int) -> None:
    row = await session.get(BillingAssignment, assignment_id)
    if row is None:
        raise BillingModelNotFound(f"no billing assignment {assignment_id}")
    await session.delete(row)
    await session.commit()
