"""Operator API: chargers (create, list with live status, show, change, delete, keys, log,
device model)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from csms.api.audit import add_detail, add_details
from csms.api.deps import AdminOnlyDep, CtxDep, OperatorDep, SessionDep, ViewerDep
from csms.api.params import Offset
from csms.api.responses import BODY, errors
from csms.errors import SettlementKeyError
from csms.passwords import acceptable_hash, hash_password
from csms.protocol.admission import CERTIFICATE_ONLY, default_profile
from csms.settlement_keys import set_settlement_key
from csms.store import chargers as store
from csms.store.device_model import list_device_variables
from csms.store.message_log import recent_frames
from csms.store.models import (
    CHARGER_ID_PATTERN,
    Charger,
    ChargerCreate,
    ChargerPublic,
    DeviceVariablePublic,
    EvseStatus,
)
from csms.upload_files import remove_charger_files

router = APIRouter(
    prefix="/api/v1/admin/chargers", tags=["admin: chargers"], responses=errors(401, 403)
)


class ChargerUpdate(BaseModel):
    location: str | None = Field(default=None, max_length=200)
    password: str | None = Field(default=None, min_length=8, max_length=40)
    registration: Literal["Accepted", "Pending", "Rejected"] | None = None
    security_profile: int | None = Field(
        default=None, ge=1, le=3, description="takes effect at the charger's next connection"
    )


BULK_MAX = 1000


class BulkCharger(BaseModel):
    """One charger of a fleet import: its password as an argon2id hash made by the provisioning
    tool (the CSMS never sees the password; the same parameters as ours, or stronger)."""

    id: str = Field(max_length=48, pattern=CHARGER_ID_PATTERN)
    password_hash: str = Field(min_length=20, max_length=300)
    location: str | None = Field(default=None, max_length=200)
    evses: int = Field(default=1, ge=0, le=64)
    security_profile: int | None = Field(default=None, ge=1, le=2)


class BulkChargers(BaseModel):
    chargers: list[BulkCharger] = Field(min_length=1, max_length=BULK_MAX)


class BulkCreated(BaseModel):
    created: int


class SettlementKeyBody(BaseModel):
    jwk: dict[str, Any]


class SettlementKeyPublic(BaseModel):
    charger_id: str
    kid: str
    jwk: dict[str, Any]


class FramePublic(BaseModel):
    at: datetime
    direction: str
    frame: str


async def _public_many(
    ctx: CtxDep, session: SessionDep, chargers: list[Charger]
) -> list[ChargerPublic]:
    ids = [c.id for c in chargers]
    evses = await store.evses_by_charger(session, ids)
    kids = await store.pinned_kids(session, ids)
    online = await ctx.dispatcher.online(ids)  # any node's socket (Redis presence in a cluster)
    clustered = bool(ctx.settings.redis_url)  # then the row's flag is only its last node's word
    return [
        ChargerPublic(
            **(
                c.model_dump(exclude={"password_hash"})
                | _newer_last_seen(ctx, c)
                | ({"online": c.id in online} if clustered else {})
            ),
            connected=c.id in online,
            evses=[EvseStatus.model_validate(e, from_attributes=True) for e in evses[c.id]],
            settlement_kid=kids.get(c.id),
        )
        for c in chargers
    ]


def _newer_last_seen(ctx: CtxDep, charger: Charger) -> dict[str, object]:
    """The writer's newer ``last_seen`` (a connected charger's row lags by up to 10 s)."""
    pending = ctx.writer.last_seen(charger.id)
    if pending is None or (charger.last_seen is not None and charger.last_seen >= pending):
        return {}
    return {"last_seen": pending}


async def _public(ctx: CtxDep, session: SessionDep, charger: Charger) -> ChargerPublic:
    (public,) = await _public_many(ctx, session, [charger])
    return public


async def _get(session: SessionDep, charger_id: str) -> Charger:
    charger = await store.get_charger(session, charger_id)
    if charger is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no charger {charger_id!r}")
    return charger


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ChargerPublic,
    responses=BODY | errors(409, notes={409: "a charger with that id exists"}),
)
async def create_charger(
    body: ChargerCreate, request: Request, ctx: CtxDep, session: SessionDep, _: OperatorDep
) -> ChargerPublic:
    """Registers a charger with its security profile and Basic-auth password (stored as an
    argon2id hash; a profile 3 charger connects with its client certificate instead)."""
    hashed = None
    if body.password is not None:
        hashed = await asyncio.to_thread(hash_password, body.password)
    charger = await store.create_charger(
        session,
        charger_id=body.id,
        password_hash=hashed,
        location=body.location,
        evses=body.evses,
        security_profile=body.security_profile or default_profile(ctx.settings),
        now=ctx.clock(),
    )
    add_details(
        request,
        id=body.id,
        evses=body.evses,
        security_profile=charger.security_profile,
        location=body.location,
    )
    return await _public(ctx, session, charger)


@router.post(
    "/bulk",
    status_code=status.HTTP_201_CREATED,
    response_model=BulkCreated,
    responses=BODY | errors(409, notes={409: "one of the ids exists: nothing was added"}),
)
async def create_chargers(
    body: BulkChargers, ctx: CtxDep, session: SessionDep, _: OperatorDep
) -> BulkCreated:
    """Registers up to 1,000 chargers at once, all or none: a fleet import whose passwords
    were hashed (argon2id) by the provisioning tool that set them on the chargers, so that
    registering thousands costs no argon2 here. 422 names a hash weaker than ours."""
    ids = [c.id for c in body.chargers]
    if len(set(ids)) != len(ids):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a charger id is repeated")
    for c in body.chargers:
        problem = acceptable_hash(c.password_hash)
        if problem is not None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"{c.id}: password_hash {problem}"
            )
    profile = default_profile(ctx.settings)
    rows = [
        Charger(
            id=c.id,
            password_hash=c.password_hash,
            location=c.location,
            security_profile=c.security_profile or profile,
        )
        for c in body.chargers
    ]
    await store.create_chargers(
        session, chargers=rows, evses=[c.evses for c in body.chargers], now=ctx.clock()
    )
    return BulkCreated(created=len(rows))


@router.get("", response_model=list[ChargerPublic])
async def list_chargers(
    ctx: CtxDep,
    session: SessionDep,
    _: ViewerDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    connected: Annotated[
        bool | None, Query(description="only chargers with (true) or without (false) a socket")
    ] = None,
    registration: Annotated[
        Literal["Accepted", "Pending", "Rejected"] | None,
        Query(description="only chargers in this registration state (Pending: auto-registered)"),
    ] = None,
) -> list[ChargerPublic]:
    """All chargers with their live connection state (``connected``: on any CSMS node now).

    Both filters are part of the query, so pages are full and never skip one; an operator
    onboarding a fleet with ``auto_register_chargers`` lists ``registration=Pending``."""
    chargers = await store.list_chargers(
        session,
        offset=offset,
        limit=limit,
        registration=registration,
        connected=connected,
        connected_ids=await ctx.dispatcher.online_all() if connected is not None else None,
    )
    return await _public_many(ctx, session, chargers)


@router.get("/{charger_id}", response_model=ChargerPublic, responses=errors(404))
async def show_charger(
    charger_id: str, ctx: CtxDep, session: SessionDep, _: ViewerDep
) -> ChargerPublic:
    return await _public(ctx, session, await _get(session, charger_id))


@router.patch("/{charger_id}", response_model=ChargerPublic, responses=BODY | errors(404))
async def update_charger(
    charger_id: str,
    body: ChargerUpdate,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    _: OperatorDep,
) -> ChargerPublic:
    """Changes location, password, security profile or registration (accept a ``Pending``
    auto-registration). Profiles 1 and 2 need a password: one set before, or in this change.

    A connected charger whose registration changes is asked to boot again, which tells it;
    taking acceptance away stops what it may send at once (csms.protocol.registration)."""
    charger = await _get(session, charger_id)
    before = charger.registration
    profile = body.security_profile or charger.security_profile
    if profile < CERTIFICATE_ONLY and body.password is None and charger.password_hash is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"security profile {profile} needs a password: send one with it",
        )
    if body.security_profile is not None:
        charger.security_profile = body.security_profile
    if body.location is not None:
        charger.location = body.location
    if body.registration is not None:
        charger.registration = body.registration
    if body.password is not None:
        charger.password_hash = await asyncio.to_thread(hash_password, body.password)
        add_detail(request, "new password")
    await store.save_charger(session, charger)
    add_details(
        request,
        location=body.location,
        registration=body.registration,
        registration_before=before if body.registration is not None else None,
        security_profile=body.security_profile,
    )
    if charger.registration != before:
        await ctx.dispatcher.registration_decided(charger_id, charger.registration)
    return await _public(ctx, session, charger)


@router.delete("/{charger_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_charger(charger_id: str, ctx: CtxDep, session: SessionDep, _: OperatorDep) -> None:
    """Deletes the charger with its history and the files it uploaded, and closes its
    connection."""
    if not await store.delete_charger(session, charger_id=charger_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no charger {charger_id!r}")
    await ctx.dispatcher.close(charger_id, "charger deleted by the operator")
    await remove_charger_files(ctx.settings.data_dir, charger_id)


@router.put(
    "/{charger_id}/settlement-key",
    response_model=SettlementKeyPublic,
    responses=BODY | errors(404),
)
async def put_settlement_key(
    charger_id: str, body: SettlementKeyBody, ctx: CtxDep, session: SessionDep, _: AdminOnlyDep
) -> SettlementKeyPublic:
    """Pins a settlement key for the charger, retiring the previous one (kept for history)."""
    await _get(session, charger_id)
    try:
        key = await set_settlement_key(ctx.db, charger_id=charger_id, jwk=body.jwk, now=ctx.clock())
    except SettlementKeyError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return SettlementKeyPublic(charger_id=charger_id, kid=key.kid, jwk=key.to_jwk())


@router.get("/{charger_id}/settlement-keys", response_model=list[dict[str, Any]])
async def settlement_key_history(
    charger_id: str, session: SessionDep, _: ViewerDep
) -> list[dict[str, Any]]:
    """Every key the charger has had: ``retired_at`` is null for the pinned one."""
    return [
        {
            "kid": k.kid,
            "jwk": json.loads(k.jwk),
            "created_at": k.created_at,
            "retired_at": k.retired_at,
        }
        for k in await store.settlement_keys(session, charger_id)
    ]


@router.get("/{charger_id}/messages", response_model=list[FramePublic])
async def message_log(
    charger_id: str,
    ctx: CtxDep,
    session: SessionDep,
    _: ViewerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[FramePublic]:
    """The newest OCPP frames of the charger (oldest first), for support."""
    await ctx.message_log.flush()
    return [
        FramePublic(at=r.at, direction=r.direction, frame=r.frame)
        for r in await recent_frames(session, charger_id, limit)
    ]


@router.get(
    "/{charger_id}/device-model",
    response_model=list[DeviceVariablePublic],
    responses=errors(
        404, 409, notes={404: "no such charger", 409: "an OCPP 1.6 charger has no device model"}
    ),
)
async def device_model(
    charger_id: str,
    session: SessionDep,
    _: ViewerDep,
    component: Annotated[str | None, Query(description="component name (any case)")] = None,
    variable: Annotated[str | None, Query(description="variable name (any case)")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeviceVariablePublic]:
    """The components and variables a 2.0.1 charger reported (NotifyReport), one entry per
    attribute type, newest value of each. Empty until the charger has sent a report (the
    answer to ``GetBaseReport`` / ``GetReport``); 409 for a 1.6 charger."""
    charger = await _get(session, charger_id)
    if charger.ocpp_version == "1.6":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"charger {charger_id!r} speaks OCPP 1.6, which has no device model: "
            "read its configuration with the GetConfiguration command",
        )
    rows = await list_device_variables(
        session,
        charger_id=charger_id,
        component=component,
        variable=variable,
        offset=offset,
        limit=limit,
    )
    return [DeviceVariablePublic.of(row) for row in rows]
