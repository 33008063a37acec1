"""The version-neutral commands as 1.6 and 2.0.1 CALLs and back, and their delivery.

Plain values: every request is also checked against its version's OCPP schema, and the
dispatcher is driven with links that only record what they are asked to send.
"""

from __future__ import annotations

from typing import Any

import pytest
from ocpp.messages import Call, CallResult

from csms.commands import (
    Command,
    ConnectionRegistry,
    JsonObject,
    LocalDispatcher,
    Outcome,
    RevokeStartToken,
    SendVendorData,
    SetIdentificationSecret,
    StartCharging,
    StopCharging,
)
from csms.errors import NotConnected
from csms.protocol import commands as ocpp_commands
from csms.protocol import fast_schema
from csms.protocol.commands import UnknownVersion, outcome, remote_start_id, request
from qr_extension.wire import MSG_REVOKE, MSG_TRUSTED_KEYS, VENDOR_ID

SECRET = "00112233445566778899aabbccddeeff"

REQUESTS: list[tuple[Command, str, str, JsonObject]] = [
    (StartCharging("ORDER1", evse_id=2), "1.6", "RemoteStartTransaction",
     {"idTag": "ORDER1", "connectorId": 2}),
    (StartCharging("ORDER1"), "1.6", "RemoteStartTransaction", {"idTag": "ORDER1"}),
    (StartCharging("ORDER1", evse_id=2), "2.0.1", "RequestStartTransaction",
     {"idToken": {"idToken": "ORDER1", "type": "Central"},
      "remoteStartId": remote_start_id("ORDER1"), "evseId": 2}),
    (StartCharging("ORDER1"), "2.0.1", "RequestStartTransaction",
     {"idToken": {"idToken": "ORDER1", "type": "Central"},
      "remoteStartId": remote_start_id("ORDER1")}),
    (StopCharging("42"), "1.6", "RemoteStopTransaction", {"transactionId": 42}),
    (StopCharging("000001-0a0b0c"), "2.0.1", "RequestStopTransaction",
     {"transactionId": "000001-0a0b0c"}),
    (SetIdentificationSecret(SECRET), "1.6", "ChangeConfiguration",
     {"key": "IdentificationSecret", "value": SECRET}),
    (SetIdentificationSecret(SECRET), "2.0.1", "SetVariables",
     {"setVariableData": [{"attributeValue": SECRET, "component": {"name": "QrChargeCtrlr"},
                           "variable": {"name": "IdentificationSecret"}}]}),
    (SendVendorData(MSG_TRUSTED_KEYS, "a.b.c"), "1.6", "DataTransfer",
     {"vendorId": VENDOR_ID, "messageId": MSG_TRUSTED_KEYS, "data": "a.b.c"}),
    (SendVendorData(MSG_TRUSTED_KEYS, "a.b.c"), "2.0.1", "DataTransfer",
     {"vendorId": VENDOR_ID, "messageId": MSG_TRUSTED_KEYS, "data": "a.b.c"}),
    (RevokeStartToken("ORDER1", 1800000900), "1.6", "DataTransfer",
     {"vendorId": VENDOR_ID, "messageId": MSG_REVOKE,
      "data": '{"jti":"ORDER1","exp":1800000900}'}),
    (RevokeStartToken("ORDER1", 1800000900), "2.0.1", "DataTransfer",
     {"vendorId": VENDOR_ID, "messageId": MSG_REVOKE,
      "data": '{"jti":"ORDER1","exp":1800000900}'}),
]  # fmt: skip


@pytest.mark.parametrize(("command", "version", "action", "payload"), REQUESTS)
def test_a_command_is_the_versions_call(
    command: Command, version: str, action: str, payload: JsonObject
) -> None:
    assert request(command, version) == (action, payload)
    fast_schema.validate(Call("1", action, payload), version)  # what the charger accepts


def test_the_remote_start_id_is_stable_per_token_and_a_32_bit_integer() -> None:
    assert remote_start_id("ORDER1") == remote_start_id("ORDER1")
    assert remote_start_id("ORDER1") != remote_start_id("ORDER2")
    assert all(0 <= remote_start_id(t) < 2**31 for t in ("", "ORDER1", "x" * 36))


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(UnknownVersion, match=r"2\.1"):
        request(StopCharging("1"), "2.1")


ANSWERS: list[tuple[Command, str, JsonObject, Outcome]] = [
    (StartCharging("O"), "1.6", {"status": "Accepted"},
     Outcome("RemoteStartTransaction", "Accepted")),
    (StartCharging("O"), "1.6", {"status": "Rejected"},
     Outcome("RemoteStartTransaction", "Rejected")),
    (StartCharging("O"), "2.0.1", {"status": "Accepted", "transactionId": "T1"},
     Outcome("RequestStartTransaction", "Accepted")),
    (StartCharging("O"), "2.0.1",
     {"status": "Rejected", "statusInfo": {"reasonCode": "Occupied", "additionalInfo": "EVSE 1"}},
     Outcome("RequestStartTransaction", "Rejected", "Occupied")),
    (StopCharging("7"), "1.6", {"status": "Rejected"},
     Outcome("RemoteStopTransaction", "Rejected")),
    (StopCharging("T1"), "2.0.1", {"status": "Accepted"},
     Outcome("RequestStopTransaction", "Accepted")),
    (SetIdentificationSecret(SECRET), "1.6", {"status": "RebootRequired"},
     Outcome("ChangeConfiguration", "RebootRequired")),
    (SetIdentificationSecret(SECRET), "1.6", {"status": "Accepted"},
     Outcome("ChangeConfiguration", "Accepted")),
    (SetIdentificationSecret(SECRET), "2.0.1",
     {"setVariableResult": [{"attributeStatus": "Accepted", "component": {"name": "QrChargeCtrlr"},
                             "variable": {"name": "IdentificationSecret"}}]},
     Outcome("SetVariables", "Accepted")),
    (SetIdentificationSecret(SECRET), "2.0.1",
     {"setVariableResult": [{"attributeStatus": "UnknownComponent",
                             "attributeStatusInfo": {"reasonCode": "NoQrCharge"},
                             "component": {"name": "QrChargeCtrlr"},
                             "variable": {"name": "IdentificationSecret"}}]},
     Outcome("SetVariables", "UnknownComponent", "NoQrCharge")),
    (SendVendorData(MSG_TRUSTED_KEYS, "t"), "1.6", {"status": "UnknownVendorId"},
     Outcome("DataTransfer", "UnknownVendorId")),
    (SendVendorData(MSG_TRUSTED_KEYS, "t"), "2.0.1", {"status": "Accepted", "data": "{}"},
     Outcome("DataTransfer", "Accepted")),
    (RevokeStartToken("ORDER1", 1), "1.6", {"status": "Accepted"},
     Outcome("DataTransfer", "Accepted")),
    (RevokeStartToken("ORDER1", 1), "2.0.1", {"status": "UnknownMessageId"},
     Outcome("DataTransfer", "UnknownMessageId")),
]  # fmt: skip


@pytest.mark.parametrize(("command", "version", "answer", "expected"), ANSWERS)
def test_an_answer_is_a_neutral_outcome(
    command: Command, version: str, answer: JsonObject, expected: Outcome
) -> None:
    action, _ = request(command, version)
    fast_schema.validate(CallResult("1", answer, action=action), version)  # a real answer
    assert outcome(command, version, answer) == expected
    assert expected.accepted == (expected.status == "Accepted")


class FakeLink:
    """A connected charger that answers every CALL with ``answer`` and records it."""

    def __init__(self, charger_id: str, version: str, *, accepted: bool = True) -> None:
        self.charger_id, self.ocpp_version, self.accepted = charger_id, version, accepted
        self.answer: JsonObject = {"status": "Accepted"}
        self.sent: list[tuple[str, JsonObject]] = []

    async def request(self, action: str, payload: JsonObject, *, timeout_s: float) -> JsonObject:
        self.sent.append((action, payload))
        return self.answer

    def post(self, action: str, payload: JsonObject) -> None:
        self.sent.append((action, payload))

    def registration_decided(self, registration: str) -> None: ...

    async def close(self, reason: str) -> None: ...


def _dispatcher(*links: Any) -> LocalDispatcher:
    registry = ConnectionRegistry()
    for link in links:
        registry.attach(link)
    return LocalDispatcher(registry, timeout_s=1, codec=ocpp_commands)


async def test_the_dispatcher_sends_a_command_in_the_chargers_version() -> None:
    old, new = FakeLink("A", "1.6"), FakeLink("B", "2.0.1")
    new.answer = {"status": "Rejected", "statusInfo": {"reasonCode": "Busy"}}
    dispatcher = _dispatcher(old, new)
    assert await dispatcher.send("A", StopCharging("5")) == Outcome(
        "RemoteStopTransaction", "Accepted"
    )
    assert await dispatcher.send("B", StopCharging("5")) == Outcome(
        "RequestStopTransaction", "Rejected", "Busy"
    )
    assert old.sent == [("RemoteStopTransaction", {"transactionId": 5})]
    assert new.sent == [("RequestStopTransaction", {"transactionId": "5"})]
    with pytest.raises(NotConnected):
        await dispatcher.send("C", StopCharging("5"))


async def test_the_operators_own_call_passes_through_as_given() -> None:
    link = FakeLink("A", "2.0.1")
    link.answer = {"status": "Accepted", "anything": 1}
    answer = await _dispatcher(link).call("A", "Reset", {"type": "Immediate"})
    assert answer == {"status": "Accepted", "anything": 1}
    assert link.sent == [("Reset", {"type": "Immediate"})]


def test_a_broadcast_reaches_every_accepted_charger_in_its_version() -> None:
    old, new, pending = FakeLink("A", "1.6"), FakeLink("B", "2.0.1"), FakeLink("C", "1.6")
    pending.accepted = False
    command = SendVendorData(MSG_TRUSTED_KEYS, "a.b.c")
    assert _dispatcher(old, new, pending).broadcast(command) == 2
    assert old.sent == [request(command, "1.6")] and new.sent == [request(command, "2.0.1")]
    assert pending.sent == []
