"""FastAPI dependencies as ``Annotated`` aliases: the context, a DB session, the admin key."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.context import CsmsContext

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
