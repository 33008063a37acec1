"""FastAPI dependencies as ``Annotated`` aliases: the context, a DB session, the operator
roles, the current driver and the money side's services.

Every service comes from the :class:`~csms.context.CsmsContext` the app built; nothing is
made here. ``CurrentUser`` is the :class:`User` of a valid bearer token (401 otherwise);
``OptionalUser`` is that user or None when no token is sent (a wrong token is still 401).

Every operator route (``/api/v1/admin/...``) takes one role dependency: ``ViewerDep`` (reads),
``OperatorDep`` or ``AdminOnlyDep``. Each authenticates the caller (an operator's sign-in token
or the admin API key, which acts as an admin) and answers 403 when the role is not enough.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal, cast

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2PasswordBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.api.audit import note_actor
from csms.context import CsmsContext
from csms.drivers.accounts import user_row
from csms.drivers.errors import TokenInvalid
from csms.operators.accounts import TOKEN_PREFIX, operator_of_token
from csms.operators.roles import Role, allows
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

_bearer = HTTPBearer(
    auto_error=False,
    description="an operator's sign-in token (POST /api/v1/admin/token) or the admin API key",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling the operator API: a signed-in operator account, or the admin API key
    (kind ``api_key``, role ``admin``: automation)."""

    name: str
    role: Role
    kind: Literal["user", "api_key"]
    token: str | None = None  # an account's bearer token (what sign-out ends)


API_KEY = Principal(name="api_key", role="admin", kind="api_key")


async def get_principal(
    request: Request,
    ctx: CtxDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of an operator route: 401 without a valid API key or live token. It is
    noted for the request's audit record."""
    given = credentials.credentials if credentials else ""
    key = ctx.settings.admin_api_key
    # an empty admin_api_key turns the key off; it never lets in a request without credentials
    if key and given and hmac.compare_digest(given.encode(), key.encode()):
        principal = API_KEY
    else:
        row = None
        if given.startswith(TOKEN_PREFIX):
            async with ctx.db.session() as session:
                row = await operator_of_token(session, given, now=ctx.clock())
        if row is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "sign in as an operator (or send the admin API key)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = Principal(name=row.name, role=cast(Role, row.role), kind="user", token=given)
    note_actor(request.scope, principal.name, principal.kind)
    return principal


def _requiring(needed: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def require(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not allows(principal.role, needed):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this needs the {needed} role; {principal.name!r} has the {principal.role} role",
            )
        return principal

    require.__name__ = require.__qualname__ = f"require_{needed}"
    return require


require_viewer = _requiring("viewer")
require_operator = _requiring("operator")
require_admin = _requiring("admin")
ROLE_DEPENDENCIES: dict[Callable[..., object], Role] = {
    require_viewer: "viewer",
    require_operator: "operator",
    require_admin: "admin",
}
"""Every role dependency and the role it needs (a test checks every operator route has one)."""

ViewerDep = Annotated[Principal, Depends(require_viewer)]  # reads
OperatorDep = Annotated[Principal, Depends(require_operator)]  # runs chargers, orders, refunds
AdminOnlyDep = Annotated[Principal, Depends(require_admin)]  # accounts, billing, keys, drivers


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
    request: Request, token: Annotated[str | None, Depends(oauth2)]
) -> User | None:
    # the context and the token verifier taken here rather than as dependencies of their own:
    # this runs on every driver request, and each dependency costs FastAPI's solving
    ctx: CsmsContext = request.app.state.ctx
    tokens = ctx.driver_tokens
    if tokens is None:
        raise _not_enabled("driver accounts")
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
