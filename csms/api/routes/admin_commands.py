"""Operator API: send a command to a connected charger and get its answer.

``POST /api/v1/admin/chargers/{id}/commands/{action}`` with the OCPP request payload (camelCase,
exactly as on the wire) for the charger's version. The payload is validated against the OCPP
schema before it is sent; the answer is the charger's CALLRESULT payload. Errors: 404 unknown
charger, 409 not connected, 422 invalid payload or action not in this version, 502 the charger
answered with a CALLERROR, 503 too many commands waiting, 504 no answer in time.

2.0.1 ``GetBaseReport`` / ``GetReport`` only ask: the charger answers at once (``Accepted``,
``Rejected``, ``NotSupported``, ``EmptyResultSet``) and sends the report later in NotifyReport
parts, which ``csms.protocol.v201`` stores in the device model. Their ``requestId`` ties those
parts to the request; the operator may leave it out and gets the one generated here back.

``ReserveNow`` / ``CancelReservation`` are kept by the CSMS (``GET .../reservations``); a
ReserveNow without its reservation id (1.6 ``reservationId``, 2.0.1 ``id``) gets one
generated here, returned as ``reservation_id``.

``UpdateFirmware``, ``GetDiagnostics`` (1.6), ``GetLog`` (2.0.1), ``SetChargingProfile``,
``ClearChargingProfile`` and ``GetCompositeSchedule`` go through :mod:`csms.protocol.remote`:
a GetDiagnostics without ``location`` (GetLog without ``log.remoteLocation``) gets the CSMS's
own one-time upload URL, and the answer (``request_id``, ``upload_id``) says where to look
later: the firmware / log status history, the charging profiles, the uploaded files.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, status
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.api.audit import add_details
from csms.api.deps import CtxDep, OperatorDep, SessionDep
from csms.api.responses import BODY, errors
from csms.commands import JsonObject
from csms.context import CsmsContext
from csms.errors import CommandError, NotConnected
from csms.protocol import remote, reservations
from csms.store import chargers as store

router = APIRouter(
    prefix="/api/v1/admin/chargers", tags=["admin: commands"], responses=errors(401, 403)
)


class CommandAction(StrEnum):
    reset = "Reset"
    change_configuration = "ChangeConfiguration"  # 1.6
    get_configuration = "GetConfiguration"  # 1.6
    set_variables = "SetVariables"  # 2.0.1
    get_variables = "GetVariables"  # 2.0.1
    remote_start_transaction = "RemoteStartTransaction"  # 1.6
    remote_stop_transaction = "RemoteStopTransaction"  # 1.6
    request_start_transaction = "RequestStartTransaction"  # 2.0.1
    request_stop_transaction = "RequestStopTransaction"  # 2.0.1
    unlock_connector = "UnlockConnector"
    trigger_message = "TriggerMessage"
    send_local_list = "SendLocalList"
    get_local_list_version = "GetLocalListVersion"
    clear_cache = "ClearCache"
    data_transfer = "DataTransfer"
    get_base_report = "GetBaseReport"  # 2.0.1
    get_report = "GetReport"  # 2.0.1
    # availability and reservations (payloads differ per version; see docs/operator-guide.md)
    change_availability = "ChangeAvailability"
    reserve_now = "ReserveNow"
    cancel_reservation = "CancelReservation"
    # --- firmware, diagnostics / logs, smart charging (csms.protocol.remote) ---
    update_firmware = "UpdateFirmware"
    get_diagnostics = "GetDiagnostics"  # 1.6
    get_log = "GetLog"  # 2.0.1
    set_charging_profile = "SetChargingProfile"
    clear_charging_profile = "ClearChargingProfile"
    get_composite_schedule = "GetCompositeSchedule"


ONLY_16 = {
    CommandAction.change_configuration,
    CommandAction.get_configuration,
    CommandAction.remote_start_transaction,
    CommandAction.remote_stop_transaction,
    CommandAction.get_diagnostics,
}
ONLY_201 = {
    CommandAction.set_variables,
    CommandAction.get_variables,
    CommandAction.request_start_transaction,
    CommandAction.request_stop_transaction,
    CommandAction.get_base_report,
    CommandAction.get_report,
    CommandAction.get_log,
}
# commands whose answer comes later in messages that carry the request's ``requestId``
REPORT_REQUESTS = {CommandAction.get_base_report, CommandAction.get_report}
MAX_REQUEST_ID = 2**31 - 1  # OCPP integers are 32-bit signed on most chargers


class CommandAnswer(BaseModel):
    charger_id: str
    action: str
    response: dict[str, Any]
    request_id: int | None = None  # the requestId sent with GetBaseReport / GetReport
    reservation_id: int | None = None  # the reservation id sent with ReserveNow
    # ... or of UpdateFirmware / GetDiagnostics / GetLog (1.6: the CSMS's own, for its history)
    upload_id: int | None = None  # GetDiagnostics / GetLog to the CSMS's upload endpoint


AUDITED_FIELDS = frozenset(
    {
        "type",
        "connectorId",
        "evseId",
        "operationalStatus",
        "requestedMessage",
        "reservationId",
        "transactionId",
        "remoteStartId",
        "chargingProfileId",
        "chargingProfilePurpose",
        "stackLevel",
        "duration",
        "chargingRateUnit",
        "listVersion",
        "updateType",
        "requestId",
        "logType",
        "retries",
    }
)
"""The payload fields a command's audit record names: what was asked (a new availability, a
reset type, the EVSE), never a configuration value, an id token or an address (a
ChangeConfiguration may carry a key, a location a user name)."""


def audit_command(request: Request, payload: dict[str, Any]) -> None:
    """Names the command's allowlisted scalar fields (and a 2.0.1 ``evse``'s id) in its
    audit record."""
    fields = {k: v for k, v in payload.items() if k in AUDITED_FIELDS and _scalar(v)}
    evse = payload.get("evse")
    if isinstance(evse, dict):
        fields["evse"] = evse.get("id") if _scalar(evse.get("id")) else None
        if _scalar(evse.get("connectorId")):
            fields["evseConnectorId"] = evse["connectorId"]
    add_details(request, **fields)


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def with_request_id(action: CommandAction, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with a generated ``requestId`` for a report request that has none.

    Random rather than a counter: ids stay distinct across restarts and CSMS nodes without
    shared state. A requestId the operator gave is kept as it is (the schema checks it)."""
    if action not in REPORT_REQUESTS or "requestId" in payload:
        return payload
    return {**payload, "requestId": secrets.randbelow(MAX_REQUEST_ID) + 1}


@router.post(
    "/{charger_id}/commands/{action}",
    response_model=CommandAnswer,
    responses=BODY
    | errors(
        404,
        409,
        502,
        503,
        504,
        notes={
            409: "the charger is not connected",
            422: "not a command of the charger's OCPP version, or an invalid payload for it",
            502: "the charger answered with a CALLERROR or an invalid answer",
            503: "too many commands are waiting for this charger",
        },
    ),
)
async def send_command(
    charger_id: str,
    action: CommandAction,
    request: Request,
    ctx: CtxDep,
    session: SessionDep,
    _: OperatorDep,
    payload: Annotated[dict[str, Any], Body(examples=[{"type": "Soft"}])],
) -> CommandAnswer:
    """Sends ``action`` with ``payload`` from the charger's own connection task and waits."""
    audit_command(request, payload)
    answered = await _send_command(charger_id, action, ctx, session, payload)
    status_ = answered.response.get("status")
    add_details(request, answer=status_ if isinstance(status_, str) else None)
    return answered


async def _send_command(
    charger_id: str,
    action: CommandAction,
    ctx: CsmsContext,
    session: AsyncSession,
    payload: dict[str, Any],
) -> CommandAnswer:
    charger = await store.get_charger(session, charger_id)
    if charger is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no charger {charger_id!r}")
    link = ctx.registry.get(charger_id)  # on this node; another node's answers through Redis
    online = link is not None or charger_id in await ctx.dispatcher.online([charger_id])
    version = link.ocpp_version if link is not None else charger.ocpp_version
    if (version == "1.6" and action in ONLY_201) or (version == "2.0.1" and action in ONLY_16):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{action.value} is not an OCPP {version} command",
        )
    payload = with_request_id(action, payload)
    if action in RESERVATION_COMMANDS:
        if not online or version is None:
            raise NotConnected(f"charger {charger_id!r} is not connected")
        return await _reservation_command(ctx, charger_id, action, version, payload)
    request_id = payload.get("requestId") if action in REPORT_REQUESTS else None
    upload_id = None
    remote_control = action.value in remote.ACTIONS and online and version is not None
    if remote_control:  # else: 409 below
        assert version is not None
        prepared = await remote.prepare(ctx, charger_id, version, action.value, payload)
        payload, upload_id = prepared.payload, prepared.upload_id
        request_id = prepared.request_id if action.value in remote.KIND else request_id
    try:
        answer = await ctx.dispatcher.call(charger_id, action.value, payload)
    except CommandError as exc:
        if remote_control and action.value in remote.KIND:  # how its request ended
            await remote.unanswered(ctx, charger_id, action.value, request_id, exc)
        raise
    if remote_control and version is not None:
        await remote.record(ctx, charger_id, version, action.value, payload, answer, request_id)
    return CommandAnswer(
        charger_id=charger_id,
        action=action.value,
        response=answer,
        request_id=request_id,
        upload_id=upload_id,
    )


# --- reservations: kept by the CSMS (GET .../reservations) ----------------------------------
RESERVATION_COMMANDS = {CommandAction.reserve_now, CommandAction.cancel_reservation}


async def _reservation_command(
    ctx: CsmsContext, charger_id: str, action: CommandAction, version: str, payload: JsonObject
) -> CommandAnswer:
    """ReserveNow (with a generated reservation id when the operator left it out) and
    CancelReservation, sent and kept by :mod:`csms.protocol.reservations`."""
    if action is CommandAction.cancel_reservation:
        answer = await reservations.cancel_reservation(ctx, charger_id, version, payload)
        return CommandAnswer(charger_id=charger_id, action=action.value, response=answer)
    payload = reservations.with_reservation_id(version, payload)
    answer = await reservations.reserve_now(ctx, charger_id, version, payload)
    reservation_id = payload.get(reservations.id_key(version))
    return CommandAnswer(
        charger_id=charger_id,
        action=action.value,
        response=answer,
        reservation_id=reservation_id if isinstance(reservation_id, int) else None,
    )
