"""Operator API: what chargers reported unasked (security events, firmware and log progress,
monitoring events, charging limits, certificate requests and the certificates signed)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from csms.api.deps import SessionDep, ViewerDep
from csms.api.params import Offset
from csms.api.responses import errors
from csms.store import chargers as store
from csms.store.models import ChargerNotification, ChargerNotificationPublic
from csms.store.notifications import list_notifications

router = APIRouter(
    prefix="/api/v1/admin/chargers", tags=["admin: notifications"], responses=errors(401, 403)
)


def _public(row: ChargerNotification) -> ChargerNotificationPublic:
    assert row.id is not None
    return ChargerNotificationPublic(
        id=row.id,
        action=row.action,
        status=row.status,
        request_id=row.request_id,
        answer=row.answer,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        payload=json.loads(row.payload),
    )


@router.get(
    "/{charger_id}/notifications",
    response_model=list[ChargerNotificationPublic],
    responses=errors(404, notes={404: "no such charger"}),
)
async def notifications(
    charger_id: str,
    session: SessionDep,
    _: ViewerDep,
    action: Annotated[str | None, Query(description="only this OCPP action")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ChargerNotificationPublic]:
    """Newest first: each message with its payload as the charger sent it, the status (or
    event type) it reported, its request id, the charger's own time stamp and, where the
    answer says something (certificates, charging needs), what the CSMS answered.
    ``CertificateSigned`` entries are the certificates the CSMS's CA signed and sent."""
    if await store.get_charger(session, charger_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no charger {charger_id!r}")
    rows = await list_notifications(
        session, charger_id=charger_id, action=action, offset=offset, limit=limit
    )
    return [_public(row) for row in rows]
