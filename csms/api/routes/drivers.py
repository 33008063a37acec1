"""Driver API: register, log in (OAuth2 password flow), profile, wallet and top-ups."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field, field_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.api.deps import CtxDep, CurrentUser, SessionDep, ThrottleDep, TokensDep
from csms.api.params import RowIdPath
from csms.api.responses import BODY, errors
from csms.bounds import Amount
from csms.drivers.accounts import authenticate, create_user, revoke_tokens
from csms.drivers.errors import InvalidCredentials
from csms.drivers.passwords import hash_async
from csms.payments import ledger, top_ups
from csms.payments.errors import InvalidAmount
from csms.payments.ledger import wallet_account
from csms.payments.orders import check_key
from csms.ports import PaymentProvider
from csms.store import drivers as store
from csms.store.models_money import EMAIL_MAX, User

router = APIRouter(prefix="/api/v1", tags=["drivers"])

# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is the mail
# server's business; this only refuses what cannot be an address.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
PASSWORD_MIN = 8
PASSWORD_MAX = 128
DEVICE_COOKIE = "qrcharge_device"  # see log_in
DEVICE_COOKIE_MAX_AGE_S = 400 * 86_400  # the longest browsers keep a cookie


class UserCreate(BaseModel):
    email: str = Field(max_length=EMAIL_MAX, examples=["driver@example.org"])
    password: str = Field(description=f"{PASSWORD_MIN}..{PASSWORD_MAX} characters")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if not _EMAIL.fullmatch(value):
            raise ValueError("not an email address (expected name@domain.tld)")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        if len(value) < PASSWORD_MIN:
            raise ValueError(f"the password needs at least {PASSWORD_MIN} characters")
        if len(value) > PASSWORD_MAX:
            raise ValueError(f"the password may have at most {PASSWORD_MAX} characters")
        if not value.strip():
            raise ValueError("the password may not be only spaces")
        return value


class UserPublic(BaseModel):
    id: int
    email: str
    created_at: datetime


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Profile(UserPublic):
    currency: str
    balance: int = Field(description="available to spend, minor units")
    held: int = Field(description="reserved by open orders, minor units")


class TopUpCreate(BaseModel):
    amount: Amount
    method: str = Field(
        default="sandbox",
        max_length=64,
        description="payment method for the provider; the sandbox declines 'sandbox-decline'",
    )


TopUpState = Literal["succeeded", "pending", "failed"]


class TopUpPublic(BaseModel):
    attempt_id: int
    state: TopUpState = Field(
        description="pending: the provider's answer is not known yet; GET the attempt later"
    )
    transfer_id: int | None = Field(description="the ledger transfer, once succeeded")
    amount: int
    balance: int
    detail: str = Field(default="", description="why it failed, or what is awaited")


class WalletLine(BaseModel):
    transfer_id: int
    kind: str
    amount: int = Field(description="signed: what this line did to the available balance")
    order_id: str | None
    at: datetime


class WalletPublic(BaseModel):
    currency: str
    balance: int
    held: int
    lines: list[WalletLine]


def get_provider(ctx: CtxDep) -> PaymentProvider:
    """The app's payment provider (``create_app(payment_provider=...)``, else the sandbox)."""
    if ctx.payment_provider is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no payment provider")
    return ctx.payment_provider


ProviderDep = Annotated[PaymentProvider, Depends(get_provider)]


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses=BODY | errors(409, notes={409: "the email is taken"}),
)
async def register(body: UserCreate, ctx: CtxDep, session: SessionDep) -> UserPublic:
    """Creates a driver account with an empty wallet (409 if the email is taken)."""
    password_hash = await hash_async(body.password)
    user = await create_user(
        session,
        email=body.email,
        password_hash=password_hash,
        currency=ctx.settings.default_currency,
    )
    return _public(user)


@router.post(
    "/token",
    response_model=Token,
    responses=BODY | errors(401, 429, notes={401: "wrong email or password"}),
)
async def log_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    response: Response,
    ctx: CtxDep,
    throttle: ThrottleDep,
    session: SessionDep,
    tokens: TokensDep,
) -> Token:
    """OAuth2 password flow: ``username`` is the email. 401 for a wrong email or password;
    429 with ``Retry-After`` after too many failures for this email or from this client.

    A success also sets the device cookie: a browser that has signed in to this account before
    is not held by a lock that others' failures put on the account."""
    client = request.client.host if request.client else None
    known = tokens.is_device_mark(form.username, request.cookies.get(DEVICE_COOKIE))
    await throttle.check(form.username, client, known_device=known)
    try:
        user = await authenticate(session, email=form.username, password=form.password)
    except InvalidCredentials:
        await throttle.failed(form.username, client)
        raise
    await throttle.succeeded(form.username, client)
    assert user.id is not None
    token = tokens.issue(user.id, now=ctx.now_s(), generation=user.token_generation)
    response.set_cookie(
        DEVICE_COOKIE,
        tokens.device_mark(form.username),
        max_age=DEVICE_COOKIE_MAX_AGE_S,
        path=request.url.path,  # sent with sign-ins only
        secure=ctx.settings.public_base_url.startswith("https:"),
        httponly=True,
        samesite="strict",
    )
    return Token(access_token=token, expires_in=tokens.ttl_s)


@router.post("/me/sign-out", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401))
async def sign_out_everywhere(user: CurrentUser, session: SessionDep) -> None:
    """Signs the driver out everywhere: every access token issued so far stops working (this
    one included); signing in again gives a new one."""
    await revoke_tokens(session, _id(user))


@router.get("/me", response_model=Profile, responses=errors(401))
async def me(user: CurrentUser, session: SessionDep) -> Profile:
    """The signed-in driver's profile and wallet balance."""
    uid = _id(user)
    currency = await ledger.currency_of(session, uid)
    return Profile(
        **_public(user).model_dump(),
        currency=currency,
        balance=await ledger.available(session, uid),
        held=await ledger.held(session, uid),
    )


@router.get("/me/wallet", response_model=WalletPublic, responses=errors(401))
async def my_wallet(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> WalletPublic:
    """Balance, holds and the latest movements of the available balance, newest first."""
    uid = _id(user)
    rows = await store.wallet_lines(session, account=wallet_account(uid), limit=limit)
    lines = [
        WalletLine(
            transfer_id=t.id or 0, kind=t.kind, amount=amount, order_id=t.order_id, at=t.created_at
        )
        for t, amount in rows
    ]
    return WalletPublic(
        currency=await ledger.currency_of(session, uid),
        balance=await ledger.available(session, uid),
        held=await ledger.held(session, uid),
        lines=lines,
    )


@router.post(
    "/me/wallet/top-ups",
    status_code=status.HTTP_201_CREATED,
    response_model=TopUpPublic,
    responses=BODY
    | errors(
        401,
        402,
        409,
        notes={
            402: "the payment provider refused the payment",
            409: "the Idempotency-Key was used for another top-up",
        },
    )
    | {202: {"model": TopUpPublic, "description": "the provider's answer is not known yet"}},
)
async def top_up(
    body: TopUpCreate,
    user: CurrentUser,
    ctx: CtxDep,
    session: SessionDep,
    provider: ProviderDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> TopUpPublic:
    """Adds money through the payment provider. Send an ``Idempotency-Key`` header to make a
    retry (double tap, lost answer) add it only once.

    201 when the provider captured it; 402 when it refused; 202 with ``state`` ``pending``
    when its answer was lost (timeout, crash): the CSMS finds out by itself (a repeat with the
    same key, or the background sweeper) and ``GET /me/wallet/top-ups/{attempt_id}`` says how
    it ended."""
    if body.amount > ctx.settings.max_top_up_amount:
        raise InvalidAmount(f"a top-up may be at most {ctx.settings.max_top_up_amount}")
    if idempotency_key is not None:  # an empty key was taken as none: a retry added it twice
        check_key(idempotency_key)
    uid = _id(user)
    key = f"top-up:{uid}:{idempotency_key or uuid.uuid4().hex}"
    await session.commit()  # no transaction stays open while the provider is called
    result = await top_ups.top_up(
        ctx.db,
        user_id=uid,
        amount=body.amount,
        key=key,
        provider=provider,
        now=ctx.clock(),
        method=body.method,
        timeout_s=ctx.settings.psp_timeout_s,
    )
    if result.state != top_ups.AttemptState.SUCCEEDED:
        response.status_code = status.HTTP_202_ACCEPTED
    return await _top_up_public(session, uid, result)


@router.get(
    "/me/wallet/top-ups/{attempt_id}",
    response_model=TopUpPublic,
    responses=errors(401, 404, notes={404: "no such top-up of this driver"}),
)
async def top_up_status(
    attempt_id: RowIdPath, user: CurrentUser, session: SessionDep
) -> TopUpPublic:
    """How a top-up stands: ``succeeded``, ``failed`` or still ``pending``."""
    uid = _id(user)
    found = await top_ups.attempt_of(session, attempt_id=attempt_id, user_id=uid)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such top-up")
    return await _top_up_public(session, uid, found)


_PUBLIC_STATE: dict[top_ups.AttemptState, TopUpState] = {
    top_ups.AttemptState.SUCCEEDED: "succeeded",
    top_ups.AttemptState.FAILED: "failed",
    top_ups.AttemptState.INTENT: "pending",
    top_ups.AttemptState.UNKNOWN: "pending",
}


async def _top_up_public(session: AsyncSession, uid: int, result: top_ups.TopUp) -> TopUpPublic:
    return TopUpPublic(
        attempt_id=result.attempt_id,
        state=_PUBLIC_STATE[result.state],
        transfer_id=result.transfer_id,
        amount=result.amount,
        balance=await ledger.available(session, uid),
        detail=result.detail,
    )


def _id(user: User) -> int:
    assert user.id is not None
    return user.id


def _public(user: User) -> UserPublic:
    return UserPublic(id=_id(user), email=user.email, created_at=user.created_at)
