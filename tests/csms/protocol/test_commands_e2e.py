"""Every operator command reaches the charger over its own connection and returns its answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ocpp.exceptions import NotSupportedError

from csms.protocol.base import on

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth

COMMANDS_16: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("Reset", {"type": "Soft"}, {"status": "Accepted"}),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, {"status": "Accepted"}),
    (
        "GetConfiguration",
        {"key": ["HeartbeatInterval"]},
        {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "120"}]},
    ),
    ("RemoteStartTransaction", {"idTag": "ORDER1", "connectorId": 1}, {"status": "Accepted"}),
    ("RemoteStopTransaction", {"transactionId": 5}, {"status": "Accepted"}),
    ("UnlockConnector", {"connectorId": 1}, {"status": "Unlocked"}),
    ("TriggerMessage", {"requestedMessage": "StatusNotification"}, {"status": "Accepted"}),
    (
        "SendLocalList",
        {"listVersion": 3, "updateType": "Full", "localAuthorizationList": [{"idTag": "RFID1"}]},
        {"status": "Accepted"},
    ),
    ("GetLocalListVersion", {}, {"listVersion": 7}),
    ("ClearCache", {}, {"status": "Accepted"}),
    (
        "DataTransfer",
        {"vendorId": "com.example", "messageId": "x", "data": "y"},
        {"status": "Accepted"},
    ),
]

VARIABLE = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
COMMANDS_201: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("Reset", {"type": "Immediate"}, {"status": "Accepted"}),
    (
        "SetVariables",
        {"setVariableData": [{**VARIABLE, "attributeValue": "60"}]},
        {"setVariableResult": [{"attributeStatus": "Accepted", **VARIABLE}]},
    ),
    (
        "GetVariables",
        {"getVariableData": [VARIABLE]},
        {
            "getVariableResult": [
                {"attributeStatus": "Accepted", "attributeValue": "120", **VARIABLE}
            ]
        },
    ),
    (
        "RequestStartTransaction",
        {"idToken": {"idToken": "ORDER1", "type": "Central"}, "remoteStartId": 9, "evseId": 1},
        {"status": "Accepted"},
    ),
    ("RequestStopTransaction", {"transactionId": "TX-9"}, {"status": "Accepted"}),
    ("UnlockConnector", {"evseId": 1, "connectorId": 1}, {"status": "Unlocked"}),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"status": "Accepted"}),
    ("SendLocalList", {"versionNumber": 3, "updateType": "Full"}, {"status": "Accepted"}),
    ("GetLocalListVersion", {}, {"versionNumber": 7}),
    ("ClearCache", {}, {"status": "Accepted"}),
    ("DataTransfer", {"vendorId": "com.example"}, {"status": "Accepted"}),
]


@pytest.mark.parametrize(
    ("cls", "subprotocol", "commands"),
    [(Client16, "ocpp1.6", COMMANDS_16), (Client201, "ocpp2.0.1", COMMANDS_201)],
    ids=["1.6", "2.0.1"],
)
async def test_every_command(
    csms: LiveCsms, cls: type[Any], subprotocol: str, commands: list[Any]
) -> None:
    await csms.add_charger("CMD")
    async with connect(csms.ws_url("CMD"), cls, subprotocol, basic_auth("CMD")) as cp:
        for action, payload, expected in commands:
            r = await csms.http.post(f"/api/v1/admin/chargers/CMD/commands/{action}", json=payload)
            assert r.status_code == 200, (action, r.text)
            assert r.json()["response"] == expected, action
        seen = [name for name, _ in cp.received]
    assert seen == [a for a, _, _ in commands if a != "DataTransfer"]


async def test_concurrent_commands_are_serialised_on_one_connection(csms: LiveCsms) -> None:
    await csms.add_charger("PAR")
    async with connect(csms.ws_url("PAR"), Client16, "ocpp1.6", basic_auth("PAR")) as cp:
        replies = await asyncio.gather(
            *(
                csms.http.post(
                    "/api/v1/admin/chargers/PAR/commands/UnlockConnector", json={"connectorId": n}
                )
                for n in (1, 2, 3)
            )
        )
        assert [r.status_code for r in replies] == [200, 200, 200]
        assert sorted(kw["connector_id"] for _, kw in cp.received) == [1, 2, 3]


async def test_command_errors(csms: LiveCsms) -> None:
    await csms.add_charger("ERR")
    url = "/api/v1/admin/chargers/ERR/commands"
    r = await csms.http.post(f"{url}/Reset", json={"type": "Soft"})
    assert r.status_code == 409  # not connected
    r = await csms.http.post("/api/v1/admin/chargers/NOPE/commands/Reset", json={"type": "Soft"})
    assert r.status_code == 404
    async with connect(csms.ws_url("ERR"), Client16, "ocpp1.6", basic_auth("ERR")):
        r = await csms.http.post(f"{url}/Reset", json={"type": "Sideways"})
        assert r.status_code == 422 and "invalid Reset request" in r.json()["detail"]
        assert r.json()["error_details"] == {
            "action": "Reset",
            "path": "type",
            "constraint": "enum",
            "detail": '"Sideways" is not one of ["Hard", "Soft"]',
        }
        r = await csms.http.post(f"{url}/SetVariables", json={"setVariableData": []})
        assert r.status_code == 422  # a 2.0.1 command on a 1.6 connection
        r = await csms.http.post(
            f"{url}/Reset", json={"type": "Hard"}, headers={"Authorization": "Bearer no"}
        )
        assert r.status_code == 401


async def test_command_timeout_and_charger_callerror(tmp_path: Any) -> None:
    from ..conftest import make_settings, serve

    class Silent(Client16):  # type: ignore[misc]
        async def route_message(self, raw_msg: str) -> None:
            if '"Reset"' in raw_msg:
                return  # never answers Reset
            await super().route_message(raw_msg)

        @on("ChangeConfiguration")
        def on_change_configuration(self, key: str, value: str) -> Any:
            raise NotSupportedError(description="read-only here")

    async with serve(make_settings(tmp_path, ocpp_call_timeout_s=0.5)) as csms:
        await csms.add_charger("TO")
        async with connect(csms.ws_url("TO"), Silent, "ocpp1.6", basic_auth("TO")):
            url = "/api/v1/admin/chargers/TO/commands"
            r = await csms.http.post(f"{url}/Reset", json={"type": "Soft"})
            assert r.status_code == 504
            # the connection still works after a timeout
            r = await csms.http.post(f"{url}/ClearCache", json={})
            assert r.status_code == 200
            r = await csms.http.post(f"{url}/ChangeConfiguration", json={"key": "A", "value": "1"})
            assert r.status_code == 502
            assert r.json()["error_code"] == "NotSupported"
            # an action not in the operator's list: 422 from the path enum
            r = await csms.http.post(f"{url}/GetInstalledCertificateIds", json={})
            assert r.status_code == 422


async def test_waiting_command_fails_at_once_when_the_charger_leaves(tmp_path: Any) -> None:
    from ..conftest import make_settings, serve

    class Mute(Client16):  # type: ignore[misc]
        async def route_message(self, raw_msg: str) -> None:
            if '"Reset"' not in raw_msg:
                await super().route_message(raw_msg)

    async with serve(make_settings(tmp_path, ocpp_call_timeout_s=30)) as csms:
        await csms.add_charger("GONE")
        async with connect(csms.ws_url("GONE"), Mute, "ocpp1.6", basic_auth("GONE")):
            pending = asyncio.create_task(
                csms.http.post("/api/v1/admin/chargers/GONE/commands/Reset", json={"type": "Soft"})
            )
            for _ in range(200):  # until the Reset CALL is on the wire
                frames = (await csms.http.get("/api/v1/admin/chargers/GONE/messages")).json()
                if any('"Reset"' in f["frame"] for f in frames):
                    break
                await asyncio.sleep(0.01)
        r = await asyncio.wait_for(pending, 10)  # far less than the 30 s call timeout
        assert r.status_code == 409 and "connection closed" in r.json()["detail"]
