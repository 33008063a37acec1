"""Operator accounts: creating and changing them, signing in and out.

A signed-in token is 32 random bytes (URL-safe base64) after the prefix ``qrop_``, which tells
it apart from the admin API key at a glance; the database keeps its sha256 only. Passwords are
argon2id like drivers' (:mod:`csms.passwords`), hashed and checked in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.operators.errors import LastAdmin, OperatorNameTaken, OperatorNotFound, SignInFailed
from csms.operators.roles import Role
from csms.passwords import check_password, hash_password
from csms.store import operators as store
from csms.store.models_operators import Operator

TOKEN_PREFIX = "qrop_"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
PASSWORD_MIN = 12
PASSWORD_MAX = 128
# Checked against when the name is unknown, so that both failures cost the same time.
_DUMMY_HASH = hash_password("not the password of any operator")


def normalise_name(name: str) -> str:
    """Names are compared case-insensitively: stored stripped and lower-cased."""
    return name.strip().lower()


def name_problem(name: str) -> str | None:
    """Why ``name`` (normalised) cannot be an account name, or None."""
    if not _NAME.fullmatch(name):
        return "a name is 1..64 of a-z 0-9 . _ @ - (starting with a letter or digit)"
    return None


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable, or None."""
    if len(password) < PASSWORD_MIN:
        return f"the password needs at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"the password may have at most {PASSWORD_MAX} characters"
    if not password.strip():
        return "the password may not be only spaces"
    return None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new token and when it stops working."""

    token: str
    operator: Operator
    expires_at: datetime


async def create_operator(
    session: AsyncSession, *, name: str, password: str, role: Role, now: datetime
) -> Operator:
    """Adds an account; OperatorNameTaken if the (normalised) name is used."""
    password_hash = await asyncio.to_thread(hash_password, password)
    try:
        return await store.add_operator(
            session, name=normalise_name(name), role=role, password_hash=password_hash, now=now
        )
    except IntegrityError as exc:
        await session.rollback()
        raise OperatorNameTaken(f"an operator named {normalise_name(name)!r} exists") from exc


async def authenticate(session: AsyncSession, *, name: str, password: str) -> Operator:
    """The enabled account with these credentials; SignInFailed otherwise (one message, the
    same argon2 cost for an unknown name)."""
    row = await store.operator_by_name(session, normalise_name(name))
    stored = row.password_hash if row is not None else _DUMMY_HASH
    ok = await asyncio.to_thread(check_password, stored, password)
    if row is None or not ok or row.disabled:
        raise SignInFailed()
    return row


async def existing_name(session: AsyncSession, name: str) -> str | None:
    """The stored name of the account ``name`` designates, or None if there is none."""
    row = await store.operator_by_name(session, normalise_name(name))
    return None if row is None else row.name


async def sign_in(
    session: AsyncSession, operator: Operator, *, now: datetime, ttl_s: int
) -> SignedIn:
    """A new token for ``operator``, valid for ``ttl_s`` seconds."""
    assert operator.id is not None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=ttl_s)
    await store.add_session(
        session,
        operator_id=operator.id,
        token_hash=token_hash(token),
        now=now,
        expires_at=expires_at,
    )
    return SignedIn(token=token, operator=operator, expires_at=expires_at)


async def operator_of_token(session: AsyncSession, token: str, *, now: datetime) -> Operator | None:
    """The enabled account a live token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    return await store.session_operator(session, token_hash=token_hash(token), now=now)


async def sign_out(session: AsyncSession, token: str) -> None:
    """Ends this one token."""
    await store.end_session(session, token_hash=token_hash(token))


async def update_operator(
    session: AsyncSession,
    name: str,
    *,
    role: Role | None = None,
    password: str | None = None,
    disabled: bool | None = None,
) -> Operator:
    """Changes an account. Disabling it or setting a new password ends all of its tokens;
    a new role holds from its next request. LastAdmin if the change would leave no enabled
    admin (the enabled admins' rows are locked while it is checked)."""
    password_hash = None if password is None else await asyncio.to_thread(hash_password, password)
    admins = await store.lock_enabled_admins(session)
    row = await store.operator_by_name(session, normalise_name(name), for_update=True)
    if row is None:
        await session.rollback()
        raise OperatorNotFound(f"no operator named {normalise_name(name)!r}")
    assert row.id is not None
    leaves_admins = (role is not None and role != "admin") or disabled is True
    if leaves_admins and row.name in admins and len(admins) <= 1:
        last = row.name
        await session.rollback()
        raise LastAdmin(f"{last!r} is the last enabled admin: make another admin first")
    if role is not None:
        row.role = role
    if disabled is not None:
        row.disabled = disabled
    if password_hash is not None:
        row.password_hash = password_hash
    session.add(row)
    if disabled is True or password_hash is not None:
        await store.end_sessions_of(session, operator_id=row.id)
    await session.commit()
    await session.refresh(row)
    return row


async def change_own_password(
    session: AsyncSession, *, name: str, current: str, new: str, token: str | None
) -> Operator:
    """An operator's own password change: ``current`` must be right (SignInFailed otherwise);
    every other token of the account ends, the one of this request (``token``) stays."""
    row = await authenticate(session, name=name, password=current)
    assert row.id is not None
    row.password_hash = await asyncio.to_thread(hash_password, new)
    session.add(row)
    keep = None if token is None else token_hash(token)
    await store.end_sessions_of(session, operator_id=row.id, keep_hash=keep)
    await session.commit()
    await session.refresh(row)
    return row


async def list_operators(session: AsyncSession) -> list[Operator]:
    return await store.list_operators(session)
