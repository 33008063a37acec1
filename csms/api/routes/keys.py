"""The CSMS public keys (``/.well-known/jwks.json``) and their rotation by the operator."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from csms.api.audit import add_details
from csms.api.deps import AdminOnlyDep, CtxDep, ViewerDep
from csms.api.responses import errors
from csms.commands import SendVendorData
from qr_extension.wire import MSG_TRUSTED_KEYS

router = APIRouter(tags=["keys"])


class KeyPublic(BaseModel):
    kid: str
    active_from: datetime
    signing: bool
    published: bool


class RotationAnswer(BaseModel):
    kid: str
    active_from: datetime
    pushed_to: int


@router.get("/.well-known/jwks.json")
async def jwks(ctx: CtxDep) -> dict[str, list[dict[str, str]]]:
    """Every key a charger or verifier should trust now: pending, signing and recently retired."""
    return ctx.keys.published_ring(ctx.now_s()).to_jwks()


@router.get("/api/v1/admin/keys", response_model=list[KeyPublic], responses=errors(401, 403))
async def list_keys(ctx: CtxDep, _: ViewerDep) -> list[KeyPublic]:
    now = ctx.now_s()
    signing = ctx.keys.active_signing_key(now).kid
    published = ctx.keys.published_ring(now)
    return [
        KeyPublic(
            kid=k.key.kid,
            active_from=datetime.fromtimestamp(k.active_from, UTC),
            signing=k.key.kid == signing,
            published=k.key.kid in published,
        )
        for k in ctx.keys.keys
    ]


@router.post("/api/v1/admin/keys/rotate", response_model=RotationAnswer, responses=errors(401, 403))
async def rotate(request: Request, ctx: CtxDep, _: AdminOnlyDep) -> RotationAnswer:
    """Adds a key that signs after ``key_prepublish_s``; pushes TrustedKeys to every charger."""
    entry = await asyncio.to_thread(ctx.keys.rotate, ctx.now_s())
    token = ctx.keys.trusted_keys_token(ctx.now_s())
    if ctx.cluster is not None:  # the other nodes read the key directory again
        await ctx.cluster.invalidate("keys")
    pushed = ctx.dispatcher.broadcast(SendVendorData(MSG_TRUSTED_KEYS, token))
    add_details(request, kid=entry.key.kid, pushed_to=pushed)
    return RotationAnswer(
        kid=entry.key.kid,
        active_from=datetime.fromtimestamp(entry.active_from, UTC),
        pushed_to=pushed,
    )
