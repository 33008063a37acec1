"""Operator API: driver accounts (list, show, disable, sign out).

A disabled driver cannot sign in, and every access token they hold stops working at once
(the current-user dependency reads the account on each request); signing a driver out ends
every token issued so far, and the driver can sign in again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel

from csms.api.audit import add_details
from csms.api.deps import AdminOnlyDep, SessionDep, ViewerDep
from csms.api.params import Offset, RowIdPath
from csms.api.responses import BODY, errors
from csms.drivers.accounts import normalise_email, revoke_tokens
from csms.store import drivers as store
from csms.store.models_money import User

router = APIRouter(
    prefix="/api/v1/admin/users", tags=["admin: drivers"], responses=errors(401, 403)
)


class UserAdmin(BaseModel):
    id: int
    email: str
    disabled: bool
    created_at: datetime


class UserUpdate(BaseModel):
    disabled: bool


def _admin(user: User) -> UserAdmin:
    return UserAdmin.model_validate(user, from_attributes=True)


async def _get(session: SessionDep, user_id: int) -> User:
    user = await store.get_user(session, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {user_id}")
    return user


@router.get("", response_model=list[UserAdmin])
async def list_users(
    session: SessionDep,
    _: ViewerDep,
    email: str | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[UserAdmin]:
    """Drivers by id; ``email`` finds one (case-insensitively)."""
    users = await store.list_users(
        session,
        email=normalise_email(email) if email is not None else None,
        offset=offset,
        limit=limit,
    )
    return [_admin(u) for u in users]


@router.get("/{user_id}", response_model=UserAdmin, responses=errors(404))
async def show_user(user_id: RowIdPath, session: SessionDep, _: ViewerDep) -> UserAdmin:
    return _admin(await _get(session, user_id))


@router.post("/{user_id}/sign-out", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def sign_out_user(user_id: RowIdPath, session: SessionDep, _: AdminOnlyDep) -> None:
    """Ends every access token the driver holds (a lost phone); they may sign in again."""
    await _get(session, user_id)
    await revoke_tokens(session, user_id)


@router.patch("/{user_id}", response_model=UserAdmin, responses=BODY | errors(404))
async def update_user(
    user_id: RowIdPath, body: UserUpdate, request: Request, session: SessionDep, _: AdminOnlyDep
) -> UserAdmin:
    """Disables (or enables again) a driver account."""
    add_details(request, disabled=body.disabled)
    user = await _get(session, user_id)
    user.disabled = body.disabled
    await store.save_user(session, user)
    return _admin(user)
