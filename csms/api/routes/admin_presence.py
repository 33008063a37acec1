"""Operator API: a charger's presence secret (the key of its dynamic identification code).

``PUT /api/v1/admin/chargers/{id}/presence-secret`` stores a new secret (generated, or the
``secret_hex`` given) and returns it once; it is never shown again. When the charger is
connected the CSMS also installs it there (1.6 ``ChangeConfiguration`` key
``IdentificationSecret``; 2.0.1 ``SetVariables`` ``QrChargeCtrlr.IdentificationSecret``); the
answer says whether that worked, otherwise install it on the charger by hand.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from csms.api.deps import AdminOnlyDep, CtxDep, SessionDep, ViewerDep
from csms.api.responses import BODY, errors
from csms.commands import SetIdentificationSecret
from csms.errors import CsmsError
from csms.store import chargers as store
from csms.store import presence_secrets
from qr_extension.identify import MIN_SECRET_BYTES

router = APIRouter(
    prefix="/api/v1/admin/chargers", tags=["admin: chargers"], responses=errors(401, 403)
)

SECRET_BYTES = 32


class PresenceSecretBody(BaseModel):
    secret_hex: str | None = Field(
        default=None,
        pattern=r"^([0-9a-fA-F]{2}){16,64}$",
        description=f"{MIN_SECRET_BYTES}..64 bytes as hex; omit to have one generated",
    )


class PresenceSecretCreated(BaseModel):
    charger_id: str
    secret_hex: str = Field(description="shown only in this answer")
    created_at: datetime
    installed: bool = Field(description="the connected charger accepted it")
    install_status: str = Field(description="the charger's answer, or why it was not sent")


class PresenceSecretState(BaseModel):
    charger_id: str
    configured: bool
    created_at: datetime | None


async def _charger_exists(session: SessionDep, charger_id: str) -> None:
    if await store.get_charger(session, charger_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no charger {charger_id!r}")


@router.put(
    "/{charger_id}/presence-secret",
    response_model=PresenceSecretCreated,
    responses=BODY | errors(404),
)
async def set_presence_secret(
    charger_id: str,
    ctx: CtxDep,
    session: SessionDep,
    _: AdminOnlyDep,
    body: PresenceSecretBody | None = None,
) -> PresenceSecretCreated:
    """Sets (replaces) the secret and installs it on the charger if it is connected."""
    await _charger_exists(session, charger_id)
    given = body.secret_hex if body is not None else None
    secret_hex = (given or secrets.token_hex(SECRET_BYTES)).lower()
    now = ctx.clock()
    await presence_secrets.set_presence_secret(
        session, charger_id=charger_id, secret_hex=secret_hex, now=now
    )
    installed, install_status = await _install(ctx, charger_id, secret_hex)
    return PresenceSecretCreated(
        charger_id=charger_id,
        secret_hex=secret_hex,
        created_at=now,
        installed=installed,
        install_status=install_status,
    )


@router.get(
    "/{charger_id}/presence-secret", response_model=PresenceSecretState, responses=errors(404)
)
async def presence_secret_state(
    charger_id: str, session: SessionDep, _: ViewerDep
) -> PresenceSecretState:
    """Whether a secret is set (the secret itself is never shown again)."""
    await _charger_exists(session, charger_id)
    row = await presence_secrets.get_presence_secret(session, charger_id)
    return PresenceSecretState(
        charger_id=charger_id,
        configured=row is not None,
        created_at=row.created_at if row is not None else None,
    )


@router.delete(
    "/{charger_id}/presence-secret",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(404),
)
async def delete_presence_secret(charger_id: str, session: SessionDep, _: AdminOnlyDep) -> None:
    """Forgets the secret: codes from this charger are then refused (403)."""
    await _charger_exists(session, charger_id)
    await presence_secrets.delete_presence_secret(session, charger_id=charger_id)


async def _install(ctx: CtxDep, charger_id: str, secret_hex: str) -> tuple[bool, str]:
    try:
        outcome = await ctx.dispatcher.send(charger_id, SetIdentificationSecret(secret_hex))
    except CsmsError as exc:  # NotConnected when it is not connected
        return False, type(exc).__name__
    return outcome.accepted, outcome.status
