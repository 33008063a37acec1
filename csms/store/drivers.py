"""Database functions for driver accounts and their wallet history (keyword-only; async, and
a plain function of a connection for the bearer-token check)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.fast import Fast
from csms.store.models_money import LedgerEntry, LedgerTransfer, User
from csms.store.writer import table_of

_USERS = table_of(User)
_USER = Fast(core_select(*_USERS.columns).where(_USERS.c.id == bindparam("user_id")))


def user_values(conn: Connection, user_id: int) -> dict[str, Any] | None:
    """The columns of driver ``user_id`` (name -> value), or None; read on a database thread
    with no session (the bearer-token check of every driver request)."""
    row = _USER.first(conn, {"user_id": user_id})
    return None if row is None else dict(zip(_USER.columns, row, strict=True))


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """The driver with this (normalised) email, or None."""
    rows = await session.exec(select(User).where(col(User.email) == email))
    return rows.first()


async def list_users(
    session: AsyncSession, *, email: str | None = None, offset: int = 0, limit: int = 100
) -> list[User]:
    """Drivers by id; ``email`` (normalised) keeps the one with that email."""
    query = select(User)
    if email is not None:
        query = query.where(col(User.email) == email)
    rows = await session.exec(query.order_by(col(User.id)).offset(offset).limit(limit))
    return list(rows.all())


async def add_user(session: AsyncSession, *, email: str, password_hash: str) -> User:
    """Adds a driver and flushes (so it has its id), without committing; IntegrityError if
    the email is used."""
    user = User(email=email, password_hash=password_hash)
    session.add(user)
    await session.flush()
    return user


async def save_user(session: AsyncSession, user: User) -> None:
    """Stores the changes made to ``user`` and commits."""
    session.add(user)
    await session.commit()


async def bump_token_generation(session: AsyncSession, *, user_id: int) -> None:
    """Adds one to the driver's token generation and commits."""
    await session.exec(
        update(User)
        .where(col(User.id) == user_id)
        .values(token_generation=col(User.token_generation) + 1)
    )
    await session.commit()


async def wallet_lines(
    session: AsyncSession, *, account: str, limit: int
) -> list[tuple[LedgerTransfer, int]]:
    """The newest ``limit`` transfers that moved ``account``, with the amount each moved it."""
    rows = await session.exec(
        select(LedgerTransfer, col(LedgerEntry.amount))
        .join(LedgerEntry, col(LedgerEntry.transfer_id) == col(LedgerTransfer.id))
        .where(col(LedgerEntry.account) == account)
        .order_by(col(LedgerTransfer.id).desc())
        .limit(limit)
    )
    return list(rows.all())
