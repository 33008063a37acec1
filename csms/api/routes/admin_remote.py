"""Operator API: what the remote-control commands left behind on a charger: the firmware and
log status history, the charging profiles the CSMS set (and cleared), and the files the charger
uploaded (listed, and downloaded one by one)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import FileResponse

from csms.api.deps import CtxDep, SessionDep, ViewerDep
from csms.api.params import Offset, RowIdPath
from csms.api.responses import errors
from csms.store import chargers
from csms.store import remote_control as store
from csms.store.models_remote import (
    ChargerStatusReport,
    ChargerStatusReportPublic,
    ChargerUploadPublic,
    ChargingProfilePublic,
)
from csms.upload_files import file_path

router = APIRouter(
    prefix="/api/v1/admin/chargers", tags=["admin: remote control"], responses=errors(401, 403)
)
Limit = Annotated[int, Query(ge=1, le=1000)]
NO_CHARGER = errors(404, notes={404: "no such charger"})


async def _known(session: SessionDep, charger_id: str) -> None:
    if await chargers.get_charger(session, charger_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no charger {charger_id!r}")


def _reports(rows: list[ChargerStatusReport]) -> list[ChargerStatusReportPublic]:
    return [ChargerStatusReportPublic.model_validate(row, from_attributes=True) for row in rows]


@router.get(
    "/{charger_id}/firmware", response_model=list[ChargerStatusReportPublic], responses=NO_CHARGER
)
async def firmware_history(
    charger_id: str, session: SessionDep, _: ViewerDep, offset: Offset = 0, limit: Limit = 100
) -> list[ChargerStatusReportPublic]:
    """Newest first: each UpdateFirmware sent (``status`` the charger's answer) and each
    firmware status the charger reported, with the request id that ties them."""
    await _known(session, charger_id)
    rows = await store.list_status_reports(
        session, charger_id=charger_id, kind="firmware", offset=offset, limit=limit
    )
    return _reports(rows)


@router.get(
    "/{charger_id}/diagnostics",
    response_model=list[ChargerStatusReportPublic],
    responses=NO_CHARGER,
)
async def diagnostics_history(
    charger_id: str, session: SessionDep, _: ViewerDep, offset: Offset = 0, limit: Limit = 100
) -> list[ChargerStatusReportPublic]:
    """Newest first: each GetDiagnostics / GetLog sent and each upload status reported."""
    await _known(session, charger_id)
    rows = await store.list_status_reports(
        session, charger_id=charger_id, kind="log", offset=offset, limit=limit
    )
    return _reports(rows)


@router.get(
    "/{charger_id}/charging-profiles",
    response_model=list[ChargingProfilePublic],
    responses=NO_CHARGER,
)
async def charging_profiles(
    charger_id: str,
    session: SessionDep,
    _: ViewerDep,
    active: Annotated[bool, Query(description="only profiles not cleared")] = False,
    offset: Offset = 0,
    limit: Limit = 100,
) -> list[ChargingProfilePublic]:
    """Newest first: the profiles the charger accepted from the CSMS, as sent, and when a
    ClearChargingProfile (or a newer profile in their place) removed them."""
    await _known(session, charger_id)
    rows = await store.list_profiles(
        session, charger_id=charger_id, active_only=active, offset=offset, limit=limit
    )
    return [
        ChargingProfilePublic(
            **row.model_dump(exclude={"profile", "charger_id"}), profile=json.loads(row.profile)
        )
        for row in rows
    ]


@router.get("/{charger_id}/uploads", response_model=list[ChargerUploadPublic], responses=NO_CHARGER)
async def uploads(
    charger_id: str, session: SessionDep, _: ViewerDep, offset: Offset = 0, limit: Limit = 100
) -> list[ChargerUploadPublic]:
    """Newest first: the diagnostics and log files the charger uploaded."""
    await _known(session, charger_id)
    rows = await store.list_uploads(session, charger_id=charger_id, offset=offset, limit=limit)
    return [ChargerUploadPublic.model_validate(row, from_attributes=True) for row in rows]


@router.get(
    "/{charger_id}/uploads/{file_id}",
    response_class=FileResponse,
    responses=errors(404, notes={404: "no such charger or file"}),
)
async def download(
    charger_id: str, file_id: RowIdPath, ctx: CtxDep, session: SessionDep, _: ViewerDep
) -> FileResponse:
    """The file as the charger uploaded it."""
    row = await store.get_upload(session, charger_id=charger_id, file_id=file_id)
    path = file_path(ctx.settings.data_dir, charger_id, file_id)
    if row is None or row.name is None or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file {file_id} of {charger_id!r}")
    return FileResponse(path, filename=row.name, media_type="application/octet-stream")
