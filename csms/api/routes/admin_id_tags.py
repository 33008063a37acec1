"""Operator API: the local RFID tags the default authorization policy accepts."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from csms.api.deps import AdminOnlyDep, CtxDep, SessionDep
from csms.api.responses import BODY, errors
from csms.store import id_tags as store

router = APIRouter(
    prefix="/api/v1/admin/id-tags", tags=["admin: id tags"], responses=errors(401, 403)
)


class IdTagBody(BaseModel):
    id_tag: str = Field(min_length=1, max_length=36)
    status: str = Field(default="Accepted", pattern="^(Accepted|Blocked|Expired|Invalid)$")
    expiry: datetime | None = None


@router.put("", response_model=IdTagBody, responses=BODY)
async def put_id_tag(
    body: IdTagBody, ctx: CtxDep, session: SessionDep, _: AdminOnlyDep
) -> IdTagBody:
    """Creates or changes a tag."""
    await store.put_id_tag(
        session, id_tag=body.id_tag, status=body.status, expiry=body.expiry, now=ctx.clock()
    )
    return body


@router.delete("/{id_tag}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_id_tag(id_tag: str, session: SessionDep, _: AdminOnlyDep) -> None:
    if not await store.delete_id_tag(session, id_tag=id_tag):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no id tag {id_tag!r}")
