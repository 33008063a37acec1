"""Database functions for billing models and their assignments (keyword-only; async, but for
the order's read of the candidates inside its unit of work).

The rules (validation, scopes, precedence, the errors) are :mod:`csms.billing`'s; these only
read and write rows. The functions that change something commit.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, literal
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.fast import Fast
from csms.store.models import Charger
from csms.store.models_money import BillingAssignment, BillingModel
from csms.store.rows import loaded
from csms.store.writer import table_of

_SITE = (
    select(literal("site:") + col(Charger.location))
    .where(col(Charger.id) == bindparam("charger_id"), col(Charger.location).is_not(None))
    .scalar_subquery()
)
CANDIDATES = (
    select(BillingAssignment.scope, BillingModel)
    .join(BillingModel, col(BillingModel.id) == col(BillingAssignment.billing_model_id))
    .where(
        col(BillingAssignment.scope).in_(bindparam("ranked", expanding=True))
        | (col(BillingAssignment.scope) == _SITE)
    )
)
"""Every assignment that may apply (``ranked`` scopes and the charger's site ``site:L``),
with its billing model; bind ``ranked`` and ``charger_id``. Built once: it runs for every
order, and building it cost more than running it."""


_MODELS = table_of(BillingModel)
_ASSIGNMENTS = table_of(BillingAssignment)
_MODEL_NAMES = tuple(_MODELS.columns.keys())


@cache
def _candidates_of(ranked: int) -> Fast:
    """:data:`CANDIDATES` with ``ranked`` scopes bound one by one (``ranked0``..: an ``IN``
    list of fixed length), as a prebuilt statement that can be read ahead."""
    scopes: list[Any] = [bindparam(f"ranked{n}") for n in range(ranked)]
    return Fast(
        core_select(_ASSIGNMENTS.c.scope, *_MODELS.columns)
        .join(_MODELS, _MODELS.c.id == _ASSIGNMENTS.c.billing_model_id)
        .where(_ASSIGNMENTS.c.scope.in_(scopes) | (_ASSIGNMENTS.c.scope == _SITE))
    )


def _candidate_params(ranked: list[str], charger_id: str) -> dict[str, str]:
    params = {f"ranked{n}": scope for n, scope in enumerate(ranked)}
    params["charger_id"] = charger_id
    return params


def candidates_ahead(session: Session, *, ranked: list[str], charger_id: str) -> None:
    """Queues :func:`candidates_in`'s read with the unit's next round trip (see
    :meth:`~csms.store.fast.Fast.ahead`)."""
    _candidates_of(len(ranked)).ahead(session.connection(), _candidate_params(ranked, charger_id))


def candidates_in(
    session: Session, *, ranked: list[str], charger_id: str
) -> dict[str, BillingModel]:
    """:func:`candidates` on a unit of work's synchronous session (the order's): the scope,
    then the billing model's columns, loaded outside the session."""
    rows = _candidates_of(len(ranked)).all(
        session.connection(), _candidate_params(ranked, charger_id)
    )
    return {
        scope: loaded(BillingModel, dict(zip(_MODEL_NAMES, values, strict=True)))
        for scope, *values in rows
    }


async def candidates(
    session: AsyncSession, *, ranked: list[str], charger_id: str
) -> dict[str, BillingModel]:
    """scope -> billing model of every assignment to one of the ``ranked`` scopes or to the
    charger's site."""
    rows = await session.exec(CANDIDATES, params={"ranked": ranked, "charger_id": charger_id})
    return {scope: model for scope, model in rows.all()}


async def get_model(session: AsyncSession, model_id: str) -> BillingModel | None:
    return await session.get(BillingModel, model_id)


async def list_models(
    session: AsyncSession, *, offset: int = 0, limit: int = 100
) -> list[BillingModel]:
    rows = await session.exec(
        select(BillingModel).order_by(col(BillingModel.id)).offset(offset).limit(limit)
    )
    return list(rows.all())


async def add_model(session: AsyncSession, model: BillingModel) -> bool:
    """Adds the model and commits; False when its id is taken."""
    session.add(model)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def save_model(session: AsyncSession, model: BillingModel) -> None:
    """Stores the changes made to ``model`` and commits."""
    session.add(model)
    await session.commit()


async def assignment_count(session: AsyncSession, *, model_id: str) -> int:
    """How many assignments name the model."""
    used = await session.exec(
        select(func.count())
        .select_from(BillingAssignment)
        .where(col(BillingAssignment.billing_model_id) == model_id)
    )
    return used.one()


async def delete_model(session: AsyncSession, model: BillingModel) -> None:
    await session.delete(model)
    await session.commit()


async def add_assignment(session: AsyncSession, row: BillingAssignment) -> bool:
    """Adds the assignment and commits; False when its scope has a model already."""
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


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


async def delete_assignment(session: AsyncSession, *, assignment_id: int) -> bool:
    """Deletes the assignment and commits; False when there is no such assignment."""
    row = await session.get(BillingAssignment, assignment_id)
    if row is None:
        return False
    await session.delete(row)
    await session.commit()
    return True
