"""Malformed frames get the right CALLERROR and the connection stays up; bad handshakes fail."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from ..conftest import LiveCsms, basic_auth, make_settings, serve


async def _raw(csms: LiveCsms, charger_id: str, subprotocol: str) -> Any:
    return await websockets.connect(
        csms.ws_url(charger_id),
        subprotocols=[Subprotocol(subprotocol)],
        additional_headers=basic_auth(charger_id),
        max_size=None,
    )


async def _exchange(ws: Any, frame: str) -> list[Any]:
    await ws.send(frame)
    answer: list[Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return answer


HEARTBEAT = '[2,"hb","Heartbeat",{}]'
DEEP = "[" * 5000 + "]" * 5000  # nested beyond what a JSON parser may recurse into
DEEP_DATA = '[2,"id-1","DataTransfer",{"vendorId":"x","data":' + DEEP + "}]"
NESTED_40 = '[2,"id-1","DataTransfer",{"vendorId":"x","data":' + "[" * 40 + "]" * 40 + "}]"


@pytest.mark.parametrize(
    ("version", "frame", "code"),
    [
        ("1.6", "this is not json", "FormationViolation"),
        ("2.0.1", "this is not json", "RpcFrameworkError"),
        ("1.6", '{"an": "object"}', "FormationViolation"),
        ("1.6", '[7,"id-1","Heartbeat",{}]', "ProtocolError"),
        ("2.0.1", '[7,"id-1","Heartbeat",{}]', "MessageTypeNotSupported"),
        ("1.6", '[2,"id-1","FlyToTheMoon",{}]', "NotSupported"),
        ("2.0.1", '[2,"id-1","FlyToTheMoon",{}]', "NotSupported"),
        ("1.6", '[2,"id-1","CancelReservation",{"reservationId":1}]', "NotImplemented"),
        ("1.6", '[2,"id-1","Heartbeat"]', "FormationViolation"),
        ("1.6", '[2,"id-1","Heartbeat",[]]', "FormationViolation"),
        ("1.6", '[2,"id-1","Authorize",{}]', "ProtocolError"),
        ("1.6", '[2,"id-1","Authorize",{"idTag":5}]', "TypeConstraintViolation"),
        ("1.6", '[2,"id-1","Authorize",{"idTag":"A","extra":1}]', "FormationViolation"),
        (
            "2.0.1",
            '[2,"id-1","Authorize",{"idToken":{"idToken":"A","type":"Nope"}}]',
            "FormatViolation",
        ),
        ("1.6", DEEP_DATA, "FormationViolation"),
        ("2.0.1", DEEP_DATA, "FormatViolation"),
        ("2.0.1", NESTED_40, "FormatViolation"),  # parses, but deeper than any OCPP message
        ("1.6", DEEP, "FormationViolation"),
        ("2.0.1", '[2,"id-1","Heartbeat",{"x":Infinity}]', "RpcFrameworkError"),  # not JSON
        # beyond a double, where the schema takes any value (it was read as infinity)
        ("2.0.1", '[2,"id-1","DataTransfer",{"vendorId":"v","data":1e999}]', "FormatViolation"),
        ("2.0.1", '[2,"id-1","Heartbeat",{"x":' + "9" * 5000 + "}]", "FormatViolation"),
    ],
)
async def test_malformed_frame_gets_callerror_and_connection_stays(
    csms: LiveCsms, version: str, frame: str, code: str
) -> None:
    await csms.add_charger("BAD")
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    ws = await _raw(csms, "BAD", subprotocol)
    try:
        answer = await _exchange(ws, frame)
        assert answer[0] == 4 and answer[2] == code, answer
        if '"id-1"' in frame:
            assert answer[1] == "id-1"
        assert (await _exchange(ws, HEARTBEAT))[:2] == [3, "hb"]  # still up
    finally:
        await ws.close()


DETAILED: list[tuple[str, str, str, dict[str, Any]]] = [
    # version, frame, errorCode, what errorDetails must say (the description says it too)
    ("2.0.1", "this is not json", "RpcFrameworkError", {"constraint": "json"}),
    ("1.6", '{"an": "object"}', "FormationViolation", {"constraint": "array"}),
    ("2.0.1", '[7,"id-1","Heartbeat",{}]', "MessageTypeNotSupported",
     {"element": 0, "constraint": "messageTypeId"}),
    ("1.6", '[2,"id-1","Heartbeat"]', "FormationViolation", {"constraint": "length"}),
    ("2.0.1", '[2,"id-1","Heartbeat",[]]', "FormatViolation",
     {"element": 3, "constraint": "payload"}),
    ("1.6", '[2,"id-1","FlyToTheMoon",{}]', "NotSupported",
     {"action": "FlyToTheMoon", "constraint": "action"}),
    ("2.0.1", '[2,"id-1","CancelReservation",{"reservationId":1}]', "NotImplemented",
     {"action": "CancelReservation", "constraint": "action"}),
    ("1.6", '[2,"id-1","Authorize",{}]', "ProtocolError",
     {"action": "Authorize", "path": "idTag", "constraint": "required"}),
    ("1.6", '[2,"id-1","Authorize",{"idTag":5}]', "TypeConstraintViolation",
     {"path": "idTag", "constraint": "type", "detail": "expected string, got integer"}),
    ("1.6", '[2,"id-1","Authorize",{"idTag":"A","extra":1}]', "FormationViolation",
     {"path": "extra", "constraint": "additionalProperties"}),
    ("1.6", '[2,"id-1","Authorize",{"idTag":"' + "K" * 300 + '"}]', "TypeConstraintViolation",
     {"path": "idTag", "constraint": "maxLength", "detail": "300 characters, maxLength 20"}),
    ("2.0.1", '[2,"id-1","Authorize",{"idToken":{"idToken":"A","type":"Nope"}}]',
     "FormatViolation", {"action": "Authorize", "path": "idToken.type", "constraint": "enum"}),
    ("2.0.1", '[2,"id-1","StatusNotification",{"timestamp":"2026-11-27T00:00:00Z","evseId":1,'
     '"connectorId":"1","connectorStatus":"Available"}]', "TypeConstraintViolation",
     {"path": "connectorId", "constraint": "type"}),
    ("2.0.1", '[2,"id-1","MeterValues",{"evseId":1,"meterValue":[{"timestamp":'
     '"2026-11-27T00:00:00Z","sampledValue":[{"value":NaN}]}]}]', "RpcFrameworkError",
     {"constraint": "json", "detail": "not valid JSON: NaN is not a JSON number"}),
    ("1.6", DEEP_DATA, "FormationViolation", {"constraint": "depth"}),
    ("2.0.1", NESTED_40, "FormatViolation", {"constraint": "depth"}),
    ("2.0.1", DEEP, "FormatViolation", {"constraint": "depth"}),
    ("1.6", '[2,"id-1","StartTransaction",{"connectorId":1,"idTag":"A","meterStart":'
     + str(2**70) + ',"timestamp":"2026-11-27T00:00:00Z"}]', "PropertyConstraintViolation",
     {"action": "StartTransaction", "path": "meterStart", "constraint": "maximum"}),
]  # fmt: skip


@pytest.mark.parametrize(("version", "frame", "code", "details"), DETAILED)
async def test_a_callerror_names_the_element_or_field_and_the_rule(
    csms: LiveCsms,
    caplog: pytest.LogCaptureFixture,
    version: str,
    frame: str,
    code: str,
    details: dict[str, Any],
) -> None:
    await csms.add_charger("WHY")
    caplog.set_level(logging.INFO, logger="csms.protocol")
    ws = await _raw(csms, "WHY", "ocpp1.6" if version == "1.6" else "ocpp2.0.1")
    try:
        kind, uid, error_code, description, error_details = await _exchange(ws, frame)
    finally:
        await ws.close()
    assert (kind, uid, error_code) == (4, "id-1" if '"id-1"' in frame else "-1", code)
    assert error_details.items() >= details.items(), error_details
    named = details.get("path") or details.get("action") or details["constraint"]
    assert named in description and len(description) <= 255
    assert "K" * 30 not in description + json.dumps(error_details)  # no long echo
    logged = [r.getMessage() for r in caplog.records if "CALLERROR" in r.getMessage()]
    assert len(logged) == 1 and code in logged[0] and named in logged[0], logged


async def test_oversized_frames(tmp_path: Path) -> None:
    async with serve(make_settings(tmp_path, ocpp_max_frame_bytes=2048)) as csms:
        await csms.add_charger("BIG")
        ws = await _raw(csms, "BIG", "ocpp1.6")
        try:
            big = json.dumps([2, "big-1", "DataTransfer", {"vendorId": "x", "data": "a" * 4000}])
            answer = await _exchange(ws, big)
            assert answer[:3] == [4, "big-1", "FormationViolation"]
            assert "2048" in answer[3]
            assert answer[4]["constraint"] == "maxFrameBytes"
            assert (await _exchange(ws, HEARTBEAT))[:2] == [3, "hb"]
            # above 4x the limit the server closes with 1009 (message too big)
            await ws.send(
                json.dumps([2, "huge", "DataTransfer", {"vendorId": "x", "data": "a" * 10000}])
            )
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        finally:
            await ws.close()


async def test_answers_to_no_pending_call_are_ignored(csms: LiveCsms) -> None:
    await csms.add_charger("ANS")
    ws = await _raw(csms, "ANS", "ocpp1.6")
    try:
        await ws.send('[3,"nobody-asked",{}]')
        await ws.send('[4,"nobody-asked","GenericError","",{}]')
        await ws.send('[3,"broken"]')  # a broken answer is not answered either
        assert (await _exchange(ws, HEARTBEAT))[:2] == [3, "hb"]
    finally:
        await ws.close()


async def _refusal(csms: LiveCsms, charger_id: str, **kw: Any) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(csms.ws_url(charger_id), **kw)
    return refused.value


async def test_handshake_refusals(csms: LiveCsms, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="csms.endpoint")
    await csms.add_charger("HS")
    no_proto = await _refusal(csms, "HS", additional_headers=basic_auth("HS"))
    assert no_proto.response.status_code == 400
    assert b"no supported OCPP subprotocol" in no_proto.response.body
    other = await _refusal(
        csms, "HS", subprotocols=["ocpp1.5"], additional_headers=basic_auth("HS")
    )
    assert other.response.status_code == 400
    wrong = await _refusal(
        csms, "HS", subprotocols=["ocpp1.6"], additional_headers=basic_auth("HS", "wrong-password")
    )
    assert wrong.response.status_code == 401
    missing = await _refusal(csms, "HS", subprotocols=["ocpp1.6"])
    assert missing.response.status_code == 401
    other_user = await _refusal(
        csms, "HS", subprotocols=["ocpp1.6"], additional_headers=basic_auth("SOMEONE")
    )
    assert other_user.response.status_code == 401
    assert b"username = charger id" in other_user.response.body
    # a fleet simulator with one user name for every station learns why from the log
    named = [r.getMessage() for r in caplog.records if "is not the charger id" in r.getMessage()]
    assert named == ["HS: Basic user name 'SOMEONE' is not the charger id"]
    unknown = await _refusal(
        csms, "NEW", subprotocols=["ocpp1.6"], additional_headers=basic_auth("NEW")
    )
    assert unknown.response.status_code == 404


async def test_a_busy_verifier_answers_503_with_an_appointment_that_is_honoured(
    csms: LiveCsms, monkeypatch: pytest.MonkeyPatch
) -> None:
    await csms.add_charger("STORM")
    now = [1000.0]
    verifier = csms.ctx.passwords
    monkeypatch.setattr(verifier, "_clock", lambda: now[0])
    monkeypatch.setattr(verifier, "_max_waiting", 0)  # as if a storm filled the queue
    busy = await _refusal(
        csms, "STORM", subprotocols=["ocpp1.6"], additional_headers=basic_auth("STORM")
    )
    assert busy.response.status_code == 503
    retry_after = int(busy.response.headers["Retry-After"])
    assert retry_after >= 3
    early = await _refusal(  # before the appointment: refused again, with a new one
        csms, "STORM", subprotocols=["ocpp1.6"], additional_headers=basic_auth("STORM")
    )
    assert early.response.status_code == 503
    now[0] += int(early.response.headers["Retry-After"])
    ws = await _raw(csms, "STORM", "ocpp1.6")  # on time: let in although the queue is "full"
    try:
        assert (await _exchange(ws, HEARTBEAT))[:2] == [3, "hb"]
    finally:
        await ws.close()


async def test_version_preference_and_reconnect_replaces_old(csms: LiveCsms) -> None:
    await csms.add_charger("TWICE")
    first = await websockets.connect(
        csms.ws_url("TWICE"),
        subprotocols=[Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")],
        additional_headers=basic_auth("TWICE"),
    )
    assert first.subprotocol == "ocpp2.0.1"
    second = await _raw(csms, "TWICE", "ocpp1.6")
    try:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(first.recv(), 5)
        assert first.close_reason == "replaced by a new connection"
        assert (await _exchange(second, HEARTBEAT))[:2] == [3, "hb"]
        charger = (await csms.http.get("/api/v1/admin/chargers/TWICE")).json()
        assert charger["connected"] is True and charger["ocpp_version"] == "1.6"
        assert csms.ctx.passwords.verifications == 1  # the second handshake hit the cache
    finally:
        await second.close()
        await first.close()


async def test_auto_registration_as_pending(tmp_path: Path) -> None:
    async with serve(make_settings(tmp_path, auto_register_chargers=True)) as csms:
        ws = await _raw(csms, "AUTO-1", "ocpp1.6")
        try:
            boot = await _exchange(
                ws,
                '[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]',
            )
            assert boot[2]["status"] == "Pending"
        finally:
            await ws.close()
        charger = (await csms.http.get("/api/v1/admin/chargers/AUTO-1")).json()
        assert charger["registration"] == "Pending"
        await csms.add_charger("REGISTERED")
        pending = (await csms.http.get("/api/v1/admin/chargers?registration=Pending")).json()
        assert [c["id"] for c in pending] == ["AUTO-1"]
        accepted = (await csms.http.get("/api/v1/admin/chargers?registration=Accepted")).json()
        assert [c["id"] for c in accepted] == ["REGISTERED"]
        bad = await csms.http.get("/api/v1/admin/chargers?registration=Maybe")
        assert bad.status_code == 422
        too_long = "A" * 49
        refused = await _refusal(
            csms, too_long, subprotocols=["ocpp1.6"], additional_headers=basic_auth(too_long)
        )
        assert refused.response.status_code == 404
        r = await csms.http.patch(
            "/api/v1/admin/chargers/AUTO-1", json={"registration": "Accepted"}
        )
        assert r.status_code == 200 and r.json()["registration"] == "Accepted"
        # the password it registered with is now its password
        wrong = await _refusal(
            csms,
            "AUTO-1",
            subprotocols=["ocpp1.6"],
            additional_headers=basic_auth("AUTO-1", "another-password"),
        )
        assert wrong.response.status_code == 401
