"""Database functions for driver accounts (keyword-only, async)."""

from __future__ import annotations

from sqlalchemy import bindparam, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.drivers.errors import EmailTaken, InvalidCredentials
from csms.drivers.passwords import verify_async
from csms.payments.wallet import open_wallet
from csms.store.fast import Fast
from csms.store.models_money import User
from csms.store.rows import loaded, table


def normalise_email(email: str) -> str:
    """Emails are compared case-insensitively: stored stripped and lower-cased."""
    return email.strip().lower()


_USERS = table(User)
_USER = Fast(core_select(*_USERS.columns).where(_USERS.c.id == bindparam("user_id")))


def user_row(conn: Connection, user_id: int) -> User | None:
    """The driver ``user_id`` as a detached row, read on a database thread (the bearer-token
    check of every driver request: one hop, no session)."""
    row = _USER.first(conn, {"user_id": user_id})
    return None if row is None else loaded(User, dict(zip(_USER.columns, row, strict=True)))


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    rows = await session.exec(select(User).where(col(User.email) == normalise_email(email)))
    return rows.first()


async def create_user(
    session: AsyncSession, *, email: str, password_hash: str, currency: str
) -> User:
    """Adds a driver and their empty wallet, and commits; EmailTaken if the email is used."""
    user = User(email=normalise_email(email), password_hash=password_hash)
    session.add(user)
    try:
        await session.flush()
        assert user.id is not None
        await open_wallet(session, user_id=user.id, currency=currency)
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise EmailTaken(f"an account with email {user.email!r} exists") from exc
    return user


async def revoke_tokens(session: AsyncSession, user_id: int) -> None:
    """Every access token issued to ``user_id`` so far stops working (the generation is bumped
    in the database, so it holds for every CSMS process)."""
    await session.exec(
        update(User)
        .where(col(User.id) == user_id)
        .values(token_generation=col(User.token_generation) + 1)
    )
    await session.commit()


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User:
    """The driver with these credentials; InvalidCredentials for an unknown email and for a
    wrong password alike (same message, same argon2 cost)."""
    user = await user_by_email(session, email)
    ok = await verify_async(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled:
        raise InvalidCredentials()
    return user
