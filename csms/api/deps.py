"""FastAPI dependencies as ``Annotated`` aliases: the context, a DB session, the admin key, the
current driver and the money side's services.

Every service comes from the :class:`~csms.context.CsmsContext` the app built; nothing is
made here. ``CurrentUser`` is the :class:`User` of a valid bearer token (401 otherwise);
``OptionalUser`` is that user or None when no token is sent (a wrong token is still 401).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2PasswordBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.context import CsmsContext
from csms.drivers.accounts import user_row
from csms.drivers.errors import TokenInvalid
from csms.payments.settlement_service import SettlementService
from csms.ports import AccessTokens, LoginGuard
from csms.store.models_money import User

# Dependencies are ``async def`` even when they do not await: FastAPI runs a plain ``def``
# dependency in a worker thread, a thread hand-over per request for a dictionary lookup.


async def get_ctx(request: Request) -> CsmsContext:
    ctx: CsmsContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[CsmsContext, Depends(get_ctx)]


async def get_session(ctx: CtxDep) -> AsyncIterator[AsyncSession]:
    async with ctx.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="the operator API key (admin_api_key)")


async def require_admin(
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = ctx.settings.admin_api_key.encode()
    given = credentials.credentials.encode() if credentials else b""
    if not hmac.compare_digest(given, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid operator API key is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminDep = Annotated[None, Depends(require_admin)]


def _not_enabled(what: str) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{what} are not enabled")


# -- the money side ----------------------------------------------------------------------------


async def get_settlements(ctx: CtxDep) -> SettlementService:
    """The settlement service that takes drivers' uploads."""
    service = ctx.settlements
    if not isinstance(service, SettlementService):
        raise _not_enabled("payments")
    return service


SettlementsDep = Annotated[SettlementService, Depends(get_settlements)]


# -- drivers -----------------------------------------------------------------------------------

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/token", auto_error=False)


async def get_driver_tokens(ctx: CtxDep) -> AccessTokens:
    if ctx.driver_tokens is None:
        raise _not_enabled("driver accounts")
    return ctx.driver_tokens


TokensDep = Annotated[AccessTokens, Depends(get_driver_tokens)]


async def get_login_throttle(ctx: CtxDep) -> LoginGuard:
    if ctx.login_throttle is None:
        raise _not_enabled("driver accounts")
    return ctx.login_throttle


ThrottleDep = Annotated[LoginGuard, Depends(get_login_throttle)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def get_optional_user(
    ctx: CtxDep,
    tokens: TokensDep,
    token: Annotated[str | None, Depends(oauth2)],
) -> User | None:
    if token is None:
        return None
    try:
        user_id, generation = tokens.verify_access(token, now=ctx.now_s())
    except TokenInvalid as exc:
        raise _unauthorized(str(exc)) from exc
    user = await ctx.db.reader.run(user_row, user_id)  # one hop; not the request's session
    if user is None or user.disabled:
        raise _unauthorized("invalid access token")
    if generation != user.token_generation:
        raise _unauthorized("the access token was signed out: sign in again")
    return user


async def get_current_user(user: Annotated[User | None, Depends(get_optional_user)]) -> User:
    if user is None:
        raise _unauthorized("sign in first: a bearer access token is required")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
OptionalUser = Annotated[User | None, Depends(get_optional_user)]
