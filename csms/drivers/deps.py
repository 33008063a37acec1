"""FastAPI dependencies for the driver API: the token service and the current driver.

``CurrentUser`` is the :class:`User` of a valid bearer token (401 otherwise);
``OptionalUser`` is that user or None when no token is sent (a wrong token is still 401).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer

from csms.api.deps import CtxDep
from csms.drivers.accounts import user_row
from csms.drivers.errors import TokenInvalid
from csms.drivers.throttle import LoginThrottle
from csms.drivers.tokens import DriverTokens, load_or_create_secret
from csms.store.models_money import User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/token", auto_error=False)
_LOCK_ATTR = "driver_tokens_lock"
_ATTR = "driver_tokens"
_THROTTLE_ATTR = "login_throttle"


async def get_driver_tokens(request: Request, ctx: CtxDep) -> DriverTokens:
    """The app's token service, made once per app (the secret is read off the loop)."""
    state = request.app.state
    tokens: DriverTokens | None = getattr(state, _ATTR, None)
    if tokens is not None:
        return tokens
    if getattr(state, _LOCK_ATTR, None) is None:
        setattr(state, _LOCK_ATTR, asyncio.Lock())
    async with getattr(state, _LOCK_ATTR):
        tokens = getattr(state, _ATTR, None)
        if tokens is None:
            secret = await asyncio.to_thread(load_or_create_secret, ctx.settings.resolved_key_dir)
            tokens = DriverTokens(
                secret=secret,
                issuer=ctx.settings.issuer,
                ttl_s=ctx.settings.driver_token_ttl_s,
            )
            setattr(state, _ATTR, tokens)
    return tokens


TokensDep = Annotated[DriverTokens, Depends(get_driver_tokens)]


async def get_login_throttle(request: Request, ctx: CtxDep) -> LoginThrottle:
    """The app's log-in throttle, made once per app."""
    state = request.app.state
    throttle: LoginThrottle | None = getattr(state, _THROTTLE_ATTR, None)
    if throttle is None:
        throttle = LoginThrottle(
            max_failures=ctx.settings.login_max_failures,
            lockout_s=ctx.settings.login_lockout_s,
            clock=lambda: ctx.clock().timestamp(),  # the app's clock (tests move it)
        )
        setattr(state, _THROTTLE_ATTR, throttle)
    return throttle


ThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]


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
