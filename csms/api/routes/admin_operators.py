"""Operator API: signing in and out as a named operator, the accounts (admins only), and the
audit log of what was done through the operator API.

Sign-in is the OAuth2 password flow at ``POST /api/v1/admin/token``; the token it answers
with is sent as ``Authorization: Bearer <token>``, exactly like the admin API key. Failed
sign-ins are throttled per name and per client like drivers' log-ins.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field, field_validator

from csms.api.audit import add_detail, add_details, note_actor
from csms.api.deps import AdminOnlyDep, CtxDep, SessionDep, ViewerDep
from csms.api.params import RowIdQuery
from csms.api.responses import BODY, errors
from csms.operators import accounts
from csms.operators.errors import (
    LastAdmin,
    OperatorError,
    OperatorNameTaken,
    OperatorNotFound,
    SignInFailed,
)
from csms.operators.roles import Role
from csms.store import audit as audit_store
from csms.store.models_operators import OPERATOR_NAME_MAX, Operator

router = APIRouter(prefix="/api/v1/admin", tags=["admin: operators"])


class SignedInPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    name: str
    role: Role
    expires_at: datetime


class MePublic(BaseModel):
    name: str
    role: Role
    kind: Literal["user", "api_key"]


class OperatorPublic(BaseModel):
    name: str
    role: Role
    disabled: bool
    created_at: datetime


def _name(value: str) -> str:
    value = accounts.normalise_name(value)
    problem = accounts.name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _password(value: str | None) -> str | None:
    problem = None if value is None else accounts.password_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class OperatorCreate(BaseModel):
    name: str = Field(max_length=OPERATOR_NAME_MAX, examples=["alice"])
    password: str = Field(
        description=f"{accounts.PASSWORD_MIN}..{accounts.PASSWORD_MAX} characters"
    )
    role: Role

    _check_name = field_validator("name")(_name)
    _check_password = field_validator("password")(_password)


class OperatorUpdate(BaseModel):
    role: Role | None = None
    password: str | None = Field(
        default=None, description=f"{accounts.PASSWORD_MIN}..{accounts.PASSWORD_MAX} characters"
    )
    disabled: bool | None = None

    _check_password = field_validator("password")(_password)


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=accounts.PASSWORD_MAX)
    new_password: str = Field(
        description=f"{accounts.PASSWORD_MIN}..{accounts.PASSWORD_MAX} characters"
    )

    _check_password = field_validator("new_password")(_password)


class AuditItem(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="an operator's name, or api_key")
    actor_kind: Literal["user", "api_key"]
    action: str = Field(description="method and route template")
    target: str = Field(description="the ids in the path, name=value, ...")
    status_code: int
    detail: str
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="the values of the change the route named (amount, cap, status, ...); "
        "never a password, token or key",
    )

    @field_validator("details", mode="before")
    @classmethod
    def _parse_details(cls, value: object) -> object:
        """Stored as JSON text (or null)."""
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                return {}
            return parsed if isinstance(parsed, dict) else {}
        return value


class AuditPage(BaseModel):
    items: list[AuditItem]
    next_before: int | None = Field(description="pass as before= for the next (older) page")


def _public(row: Operator) -> OperatorPublic:
    return OperatorPublic.model_validate(row, from_attributes=True)


@router.post(
    "/token",
    response_model=SignedInPublic,
    responses=BODY | errors(401, 429, notes={401: "wrong name or password"}),
)
async def sign_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
) -> SignedInPublic:
    """OAuth2 password flow for operator accounts: ``username`` is the account's name. 401
    for a wrong name or password (or a disabled account); 429 with ``Retry-After`` after too
    many failures for this name or from this client."""
    throttle = ctx.operator_throttle
    client = request.client.host if request.client else None
    if throttle is not None:
        await throttle.check(form.username, client)
    try:
        row = await accounts.authenticate(session, name=form.username, password=form.password)
    except SignInFailed:
        if throttle is not None:
            await throttle.failed(form.username, client)
        known = await accounts.existing_name(session, form.username)
        if known is not None:  # a stranger's guesses at made-up names are not logged
            note_actor(request.scope, known, "user")
        raise
    if throttle is not None:
        await throttle.succeeded(form.username, client)
    note_actor(request.scope, row.name, "user")
    signed = await accounts.sign_in(
        session, row, now=ctx.clock(), ttl_s=ctx.settings.operator_token_ttl_s
    )
    return SignedInPublic(
        access_token=signed.token,
        name=row.name,
        role=row.role,  # type: ignore[arg-type]
        expires_at=signed.expires_at,
    )


@router.post("/sign-out", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 403))
async def sign_out(principal: ViewerDep, session: SessionDep) -> None:
    """Ends the token of this request (the API key cannot be signed out: nothing happens)."""
    if principal.token is not None:
        await accounts.sign_out(session, principal.token)


@router.get("/me", response_model=MePublic, responses=errors(401, 403))
async def me(principal: ViewerDep) -> MePublic:
    """Who the credentials of this request belong to, and their role."""
    return MePublic(name=principal.name, role=principal.role, kind=principal.kind)


@router.get("/operators", response_model=list[OperatorPublic], responses=errors(401, 403))
async def list_operators(_: AdminOnlyDep, session: SessionDep) -> list[OperatorPublic]:
    """Every operator account, by name."""
    return [_public(row) for row in await accounts.list_operators(session)]


@router.post(
    "/operators",
    status_code=status.HTTP_201_CREATED,
    response_model=OperatorPublic,
    responses=BODY | errors(401, 403, 409, notes={409: "the name is taken"}),
)
async def create_operator(
    body: OperatorCreate, request: Request, _: AdminOnlyDep, ctx: CtxDep, session: SessionDep
) -> OperatorPublic:
    """Adds an operator account with a role (``viewer``, ``operator`` or ``admin``)."""
    add_detail(request, f"role={body.role}")
    add_details(request, name=body.name, role=body.role)
    row = await accounts.create_operator(
        session, name=body.name, password=body.password, role=body.role, now=ctx.clock()
    )
    return _public(row)


@router.patch(
    "/operators/{name}",
    response_model=OperatorPublic,
    responses=BODY | errors(401, 403, 404, 409, notes={409: "it would leave no enabled admin"}),
)
async def update_operator(
    name: Annotated[str, Path(max_length=OPERATOR_NAME_MAX)],
    body: OperatorUpdate,
    request: Request,
    _: AdminOnlyDep,
    session: SessionDep,
) -> OperatorPublic:
    """Changes an account's role, password or whether it is disabled. Disabling it or a new
    password ends every token it holds; 409 if no enabled admin would be left."""
    changes = [f"role={body.role}"] if body.role is not None else []
    if body.disabled is not None:
        changes.append(f"disabled={str(body.disabled).lower()}")
    if body.password is not None:
        changes.append("new password")
    add_detail(request, ", ".join(changes) or "no change")
    add_details(request, role=body.role, disabled=body.disabled)
    row = await accounts.update_operator(
        session, name, role=body.role, password=body.password, disabled=body.disabled
    )
    return _public(row)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=BODY
    | errors(
        401,
        403,
        409,
        429,
        notes={
            401: "the current password is wrong",
            409: "the admin API key has no password",
            429: "too many wrong current passwords",
        },
    ),
)
async def change_my_password(
    body: PasswordChange,
    request: Request,
    principal: ViewerDep,
    ctx: CtxDep,
    session: SessionDep,
) -> None:
    """The signed-in operator's own password (any role): the current one must be given;
    every other token of the account ends (other browsers must sign in again), this one
    stays. Wrong current passwords are throttled like sign-ins (429 with ``Retry-After``)."""
    if principal.kind != "user":
        raise HTTPException(status.HTTP_409_CONFLICT, "the admin API key has no password")
    add_details(request, name=principal.name)
    throttle = ctx.operator_throttle
    client = request.client.host if request.client else None
    if throttle is not None:
        await throttle.check(principal.name, client)
    try:
        await accounts.change_own_password(
            session,
            name=principal.name,
            current=body.current_password,
            new=body.new_password,
            token=principal.token,
        )
    except SignInFailed:
        if throttle is not None:
            await throttle.failed(principal.name, client)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the current password is wrong") from None
    if throttle is not None:
        await throttle.succeeded(principal.name, client)


@router.get("/audit", response_model=AuditPage, responses=errors(401, 403))
async def audit_log(
    _: ViewerDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: RowIdQuery = None,
    actor: Annotated[str | None, Query(max_length=OPERATOR_NAME_MAX)] = None,
) -> AuditPage:
    """What was done through the operator API, newest first; ``actor`` keeps one operator's
    records (``api_key`` for the key's), ``before`` pages to older ones."""
    rows = await audit_store.records(session, limit=limit, before=before, actor=actor)
    items = [AuditItem.model_validate(row, from_attributes=True) for row in rows]
    next_before = items[-1].id if len(items) == limit else None
    return AuditPage(items=items, next_before=next_before)


_STATUS: tuple[tuple[type[OperatorError], int], ...] = (
    (SignInFailed, status.HTTP_401_UNAUTHORIZED),
    (OperatorNotFound, status.HTTP_404_NOT_FOUND),
    (OperatorNameTaken, status.HTTP_409_CONFLICT),
    (LastAdmin, status.HTTP_409_CONFLICT),
)


async def operator_error(request: Request, exc: Exception) -> JSONResponse:
    """Converts :mod:`csms.operators`' errors to HTTP (the app registers it)."""
    code = next((c for kind, c in _STATUS if isinstance(exc, kind)), status.HTTP_400_BAD_REQUEST)
    headers = {"WWW-Authenticate": "Bearer"} if code == status.HTTP_401_UNAUTHORIZED else None
    return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)
