"""Operator API: send a command to a connected charger and get its answer.

``POST /api/v1/admin/chargers/{id}/commands/{action}`` with the OCPP request payload (camelCase,
exactly as on the wire) for the charger's version. The payload is validated against the OCPP
schema before it is sent; the answer is the charger's CALLRESULT payload. Errors: 404 unknown
charger, 409 not connected, 422 invalid payload or action not in this version, 502 the charger
answered with a CALLERROR, 503 too many commands waiting, 504 no answer in time.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel

from csms.api.deps import AdminDep, CtxDep, SessionDep
from csms.store import chargers as store

router = APIRouter(prefix="/api/v1/admin/chargers", tags=["admin: commands"])


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


ONLY_16 = {
    CommandAction.change_configuration,
    CommandAction.get_configuration,
    CommandAction.remote_start_transaction,
    CommandAction.remote_stop_transaction,
}
ONLY_201 = {
    CommandAction.set_variables,
    CommandAction.get_variables,
    CommandAction.request_start_transaction,
    CommandAction.request_stop_transaction,
}


class CommandAnswer(BaseModel):
    charger_id: str
    action: str
    response: dict[str, Any]


@router.post("/{charger_id}/commands/{action}", response_model=CommandAnswer)
async def send_command(
    charger_id: str,
    action: CommandAction,
    ctx: CtxDep,
    session: SessionDep,
    _: AdminDep,
    payload: Annotated[dict[str, Any], Body(examples=[{"type": "Soft"}])],
) -> CommandAnswer:
    """Sends ``action`` with ``payload`` from the charger's own connection task and waits."""
    charger = await store.get_charger(session, charger_id)
    if charger is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no charger {charger_id!r}")
    link = ctx.registry.get(charger_id)
    version = link.ocpp_version if link is not None else charger.ocpp_version
    if (version == "1.6" and action in ONLY_201) or (version == "2.0.1" and action in ONLY_16):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{action.value} is not an OCPP {version} command",
        )
    answer = await ctx.dispatcher.send(charger_id, action.value, payload)
    return CommandAnswer(charger_id=charger_id, action=action.value, response=answer)
