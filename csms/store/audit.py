"""Database functions for the audit log of operator actions (keyword-only, async)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models_operators import AuditRecord


async def add_record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    actor_kind: str,
    action: str,
    target: str,
    status_code: int,
    detail: str,
    details: str | None = None,
) -> None:
    """Appends one record and commits; ``details`` is the JSON of the change's values."""
    session.add(
        AuditRecord(
            at=at,
            actor=actor,
            actor_kind=actor_kind,
            action=action,
            target=target,
            status_code=status_code,
            detail=detail,
            details=details,
        )
    )
    await session.commit()


async def records(
    session: AsyncSession, *, limit: int, before: int | None = None, actor: str | None = None
) -> list[AuditRecord]:
    """Newest first: up to ``limit`` records with an id below ``before``, of ``actor`` only
    when given."""
    statement = select(AuditRecord).order_by(col(AuditRecord.id).desc()).limit(limit)
    if before is not None:
        statement = statement.where(col(AuditRecord.id) < before)
    if actor is not None:
        statement = statement.where(col(AuditRecord.actor) == actor)
    return list((await session.exec(statement)).all())
