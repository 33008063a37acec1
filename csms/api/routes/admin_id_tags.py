"""Operator API: the local RFID tags the default authorization policy accepts: list them,
add or change one (status, expiry), delete one.

A card number is a credential at the charger: the audit log keeps only its masked form
(:func:`csms.api.audit.masked`), in the details, the target and the error text alike."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, Field

from csms.api.audit import add_details, masked
from csms.api.deps import AdminOnlyDep, CtxDep, SessionDep, ViewerDep
from csms.api.params import Offset
from csms.api.responses import BODY, errors
from csms.store import id_tags as store

router = APIRouter(
    prefix="/api/v1/admin/id-tags", tags=["admin: id tags"], responses=errors(401, 403)
)
TAG_MAX = 36
TAG_STATUS = "^(Accepted|Blocked|Expired|Invalid)$"


class IdTagBody(BaseModel):
    id_tag: str = Field(min_length=1, max_length=TAG_MAX)
    status: str = Field(default="Accepted", pattern=TAG_STATUS)
    expiry: datetime | None = None


class IdTagPublic(IdTagBody):
    created_at: datetime


@router.get("", response_model=list[IdTagPublic])
async def list_id_tags(
    session: SessionDep,
    _: ViewerDep,
    status_: Annotated[str | None, Query(alias="status", pattern=TAG_STATUS)] = None,
    prefix: Annotated[str | None, Query(max_length=TAG_MAX)] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IdTagPublic]:
    """The known tags by id; ``status`` keeps one status, ``prefix`` the tags starting with
    it."""
    rows = await store.list_id_tags(
        session, status=status_, prefix=prefix or None, offset=offset, limit=limit
    )
    return [IdTagPublic.model_validate(row, from_attributes=True) for row in rows]


@router.put("", response_model=IdTagBody, responses=BODY)
async def put_id_tag(
    body: IdTagBody, request: Request, ctx: CtxDep, session: SessionDep, _: AdminOnlyDep
) -> IdTagBody:
    """Creates or changes a tag (its status and expiry; no expiry: valid until changed)."""
    add_details(
        request,
        id_tag=masked(body.id_tag),
        status=body.status,
        expiry=body.expiry.isoformat() if body.expiry is not None else "none",
    )
    await store.put_id_tag(
        session, id_tag=body.id_tag, status=body.status, expiry=body.expiry, now=ctx.clock()
    )
    return body


@router.delete("/{id_tag}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_id_tag(
    id_tag: Annotated[str, Path(max_length=TAG_MAX)], session: SessionDep, _: AdminOnlyDep
) -> None:
    if not await store.delete_id_tag(session, id_tag=id_tag):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no id tag {masked(id_tag)}")
