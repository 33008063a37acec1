"""Database functions for operator accounts and their sign-in sessions (keyword-only, async).

Only a token's sha256 is stored; a session ends when its row is deleted (sign-out, disabling
the account, a new password) or when ``expires_at`` has passed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.models_operators import Operator, OperatorSession


async def add_operator(
    session: AsyncSession, *, name: str, role: str, password_hash: str, now: datetime
) -> Operator:
    """Adds an account and commits (IntegrityError if the name is taken)."""
    row = Operator(name=name, role=role, password_hash=password_hash, created_at=now)
    session.add(row)
    await session.commit()
    await session.refresh(row)
    return row


async def operator_by_name(
    session: AsyncSession, name: str, *, for_update: bool = False
) -> Operator | None:
    statement = select(Operator).where(col(Operator.name) == name)
    if for_update:
        statement = statement.with_for_update()
    return (await session.exec(statement)).first()


async def list_operators(session: AsyncSession) -> list[Operator]:
    """Every account, by name (staff lists are short)."""
    return list((await session.exec(select(Operator).order_by(col(Operator.name)))).all())


async def lock_enabled_admins(session: AsyncSession) -> list[str]:
    """The names of the enabled admins, their rows locked for this transaction: two admins
    demoting each other at once cannot both see the other still an admin. SQLite ignores
    ``FOR UPDATE`` and its driver runs a SELECT outside any transaction, so there a write
    comes first (setting the role to itself): it opens the transaction with the database's
    one writer lock, held to the commit, and the other demotion waits for it."""
    if session.get_bind().dialect.name == "sqlite":
        admins = col(Operator.role) == "admin"
        await session.exec(update(Operator).where(admins).values(role=Operator.role))
    statement = (
        select(Operator.name)
        .where(col(Operator.role) == "admin", col(Operator.disabled).is_(False))
        .with_for_update()
    )
    return list((await session.exec(statement)).all())


async def count_enabled_admins(session: AsyncSession) -> int:
    statement = select(func.count()).where(
        col(Operator.role) == "admin", col(Operator.disabled).is_(False)
    )
    return int((await session.exec(statement)).one())


async def add_session(
    session: AsyncSession,
    *,
    operator_id: int,
    token_hash: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    """Records a signed-in token and, in the same commit, forgets the expired ones (the table
    stays as small as the live sessions)."""
    await session.exec(delete(OperatorSession).where(col(OperatorSession.expires_at) <= now))
    session.add(
        OperatorSession(
            operator_id=operator_id, token_hash=token_hash, created_at=now, expires_at=expires_at
        )
    )
    await session.commit()


async def session_operator(
    session: AsyncSession, *, token_hash: str, now: datetime
) -> Operator | None:
    """The enabled account a live token belongs to, or None (unknown, ended, expired, or the
    account is disabled)."""
    statement = (
        select(Operator)
        .join(OperatorSession, col(OperatorSession.operator_id) == col(Operator.id))
        .where(
            col(OperatorSession.token_hash) == token_hash,
            col(OperatorSession.expires_at) > now,
            col(Operator.disabled).is_(False),
        )
    )
    return (await session.exec(statement)).first()


async def end_session(session: AsyncSession, *, token_hash: str) -> None:
    """Ends one token (sign-out) and commits."""
    await session.exec(delete(OperatorSession).where(col(OperatorSession.token_hash) == token_hash))
    await session.commit()


async def end_sessions_of(
    session: AsyncSession, *, operator_id: int, keep_hash: str | None = None
) -> None:
    """Ends every token of an account but the one hashed ``keep_hash`` (if given); the caller
    commits (with the change that ends them)."""
    query = delete(OperatorSession).where(col(OperatorSession.operator_id) == operator_id)
    if keep_hash is not None:
        query = query.where(col(OperatorSession.token_hash) != keep_hash)
    await session.exec(query)
