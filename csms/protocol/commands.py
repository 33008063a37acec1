"""The commands the CSMS sends, as OCPP 1.6 and 2.0.1 CALLs, and their answers as outcomes.

The one place that knows how each version carries a :data:`~csms.commands.Command`:
:func:`request` gives the action and the camelCase payload, :func:`outcome` reads the charger's
answer into an :class:`~csms.commands.Outcome`. Pure functions of plain values; the
:class:`~csms.commands.LocalDispatcher` is given this module as its codec.

=========================  ===========================  ==========================================
command                    1.6                          2.0.1
=========================  ===========================  ==========================================
StartCharging              RemoteStartTransaction       RequestStartTransaction (``Central`` token,
                           (idTag, connectorId)         evseId, a remoteStartId stable per token)
StopCharging               RemoteStopTransaction        RequestStopTransaction
                           (integer transactionId)      (string transactionId)
SetIdentificationSecret    ChangeConfiguration          SetVariables
                           ``IdentificationSecret``     ``QrChargeCtrlr.IdentificationSecret``
SendVendorData             DataTransfer                 DataTransfer
RevokeStartToken           DataTransfer ``Revoke``      DataTransfer ``Revoke``
                           (data ``{"jti", "exp"}``)    (the same string)
=========================  ===========================  ==========================================
"""

from __future__ import annotations

import json
import zlib
from typing import Any, assert_never

from csms.commands import (
    Command,
    JsonObject,
    Outcome,
    RevokeStartToken,
    SendVendorData,
    SetIdentificationSecret,
    StartCharging,
    StopCharging,
)
from csms.errors import CommandError
from qr_extension.wire import MSG_REVOKE, VENDOR_ID

V16, V201 = "1.6", "2.0.1"
SECRET_KEY = "IdentificationSecret"  # 1.6 configuration key, 2.0.1 variable
SECRET_COMPONENT = "QrChargeCtrlr"  # 2.0.1 component of our extension's variables
REMOTE_START_ID_MASK = 0x7FFFFFFF  # OCPP integers are 32-bit signed


class UnknownVersion(CommandError, ValueError):
    """A version this module has no translation for (a bug: the endpoint accepts only two)."""


def request(command: Command, version: str) -> tuple[str, JsonObject]:
    """The action and camelCase payload that carry ``command`` in OCPP ``version``."""
    if version == V16:
        return _request16(command)
    if version == V201:
        return _request201(command)
    raise UnknownVersion(f"no OCPP {version!r} translation for {type(command).__name__}")


def outcome(command: Command, version: str, answer: JsonObject) -> Outcome:
    """What the charger's answer to :func:`request`'s CALL says (the answer passed the
    version's schema, so its required fields are there)."""
    action, _ = request(command, version)
    if isinstance(command, SetIdentificationSecret) and version == V201:
        first = (answer.get("setVariableResult") or [{}])[0]  # the one variable we set
        return Outcome(
            action, str(first.get("attributeStatus")), _reason(first, "attributeStatusInfo")
        )
    return Outcome(action, str(answer.get("status")), _reason(answer, "statusInfo"))


def remote_start_id(id_token: str) -> int:
    """The 2.0.1 ``remoteStartId`` of a start for ``id_token``: the same for every request
    for that token, so a repeated start is recognisably the same one."""
    return zlib.crc32(id_token.encode()) & REMOTE_START_ID_MASK


def _request16(command: Command) -> tuple[str, JsonObject]:
    payload: JsonObject
    match command:
        case StartCharging(id_token=id_token, evse_id=evse_id):
            payload = {"idTag": id_token}
            if evse_id is not None:
                payload["connectorId"] = evse_id  # a 1.6 connector is one of our EVSEs
            return "RemoteStartTransaction", payload
        case StopCharging(transaction_id=transaction_id):
            return "RemoteStopTransaction", {"transactionId": int(transaction_id)}
        case SetIdentificationSecret(secret_hex=secret_hex):
            return "ChangeConfiguration", {"key": SECRET_KEY, "value": secret_hex}
        case SendVendorData():
            return "DataTransfer", _vendor_data(command)
        case RevokeStartToken():
            return "DataTransfer", _vendor_data(revoke_data(command))
        case _:
            assert_never(command)


def _request201(command: Command) -> tuple[str, JsonObject]:
    payload: JsonObject
    match command:
        case StartCharging(id_token=id_token, evse_id=evse_id):
            payload = {
                "idToken": {"idToken": id_token, "type": "Central"},
                "remoteStartId": remote_start_id(id_token),
            }
            if evse_id is not None:
                payload["evseId"] = evse_id
            return "RequestStartTransaction", payload
        case StopCharging(transaction_id=transaction_id):
            return "RequestStopTransaction", {"transactionId": transaction_id}
        case SetIdentificationSecret(secret_hex=secret_hex):
            variable = {
                "attributeValue": secret_hex,
                "component": {"name": SECRET_COMPONENT},
                "variable": {"name": SECRET_KEY},
            }
            return "SetVariables", {"setVariableData": [variable]}
        case SendVendorData():
            return "DataTransfer", _vendor_data(command)
        case RevokeStartToken():
            return "DataTransfer", _vendor_data(revoke_data(command))
        case _:
            assert_never(command)


def _vendor_data(command: SendVendorData) -> JsonObject:
    return {"vendorId": VENDOR_ID, "messageId": command.message_id, "data": command.data}


def revoke_data(command: RevokeStartToken) -> SendVendorData:
    """The ``Revoke`` vendor message: ``data`` is the JSON string ``{"jti", "exp"}`` (a
    string, as every data of ours: the ocpp library would rewrite a nested object's keys)."""
    data = json.dumps({"jti": command.order_id, "exp": command.expires_at}, separators=(",", ":"))
    return SendVendorData(MSG_REVOKE, data)


def _reason(answer: dict[str, Any], key: str) -> str | None:
    """The 2.0.1 ``reasonCode`` of a status info, if the charger gave one (1.6 has none)."""
    info = answer.get(key)
    if isinstance(info, dict) and isinstance(code := info.get("reasonCode"), str):
        return code
    return None
