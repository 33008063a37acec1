"""Driver accounts: sign-up, sign-in and signing out everywhere."""

from __future__ import annotations

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.drivers.errors import EmailTaken, InvalidCredentials
from csms.drivers.passwords import verify_async
from csms.store import drivers as store
from csms.store import ledger as store_ledger
from csms.store.models_money import User
from csms.store.rows import loaded


def normalise_email(email: str) -> str:
    """Emails are compared case-insensitively: stored stripped and lower-cased."""
    return email.strip().lower()


def user_row(conn: Connection, user_id: int) -> User | None:
    """The driver ``user_id`` as a detached row, read on a database thread (the bearer-token
    check of every driver request: one hop, no session)."""
    values = store.user_values(conn, user_id)
    return None if values is None else loaded(User, values)


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await store.user_by_email(session, normalise_email(email))


async def create_user(
    session: AsyncSession, *, email: str, password_hash: str, currency: str
) -> User:
    """Adds a driver and their empty wallet, and commits; EmailTaken if the email is used."""
    normalised = normalise_email(email)
    try:
        user = await store.add_user(session, email=normalised, password_hash=password_hash)
        assert user.id is not None
        await store_ledger.open_wallet(session, user_id=user.id, currency=currency)
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise EmailTaken(f"an account with email {normalised!r} exists") from exc
    return user


async def revoke_tokens(session: AsyncSession, user_id: int) -> None:
    """Every access token issued to ``user_id`` so far stops working (the generation is bumped
    in the database, so it holds for every CSMS process)."""
    await store.bump_token_generation(session, user_id=user_id)


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User:
    """The driver with these credentials; InvalidCredentials for an unknown email and for a
    wrong password alike (same message, same argon2 cost)."""
    user = await user_by_email(session, email)
    ok = await verify_async(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled:
        raise InvalidCredentials()
    return user
