"""Frame parsing and answering without sockets, and the password verifier's cache."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from typing import Any

import pytest
from ocpp.messages import Call, CallError, CallResult, MessageType, get_validator
from ocpp.v201 import call_result as call_result201

from csms.passwords import PasswordVerifier, VerifierOverloaded, hash_password
from csms.protocol.base import CsmsChargePoint, on
from csms.protocol.naming import to_snake
from csms.protocol.v16 import ChargePoint16
from csms.protocol.v201 import ChargePoint201
from ocpp_rpc.frames import (
    MAX_DEPTH,
    FrameError,
    error_code_for,
    oversized,
    parse_frame,
    sniff_unique_id,
)


def test_valid_frames() -> None:
    call = parse_frame('[2,"a","Heartbeat",{}]')
    assert isinstance(call, Call) and call.action == "Heartbeat"
    assert isinstance(parse_frame('[3,"a",{"x":1}]'), CallResult)
    assert isinstance(parse_frame('[4,"a","GenericError","",{}]'), CallError)
    # a backslash before "u0000" is text, not NUL
    escaped = parse_frame('[2,"a","Authorize",{"idTag":"R\\\\u0000"}]')
    assert isinstance(escaped, Call) and escaped.payload == {"idTag": "R\\u0000"}


@pytest.mark.parametrize(
    ("frame", "uid", "code", "reply", "constraint", "element"),
    [
        ("nope", None, "RpcFrameworkError", True, "json", None),
        ('[2,"x"', "x", "RpcFrameworkError", True, "json", None),
        ("[]", None, "RpcFrameworkError", True, "array", None),
        ('{"a": 1}', None, "RpcFrameworkError", True, "array", None),
        ('[2,17,"Heartbeat",{}]', None, "RpcFrameworkError", True, "uniqueId", 1),
        ('[2,"' + "u" * 37 + '","Heartbeat",{}]', None, "RpcFrameworkError", True, "uniqueId", 1),
        ('[9,"a"]', "a", "MessageTypeNotSupported", True, "messageTypeId", 0),
        ('[true,"a","Heartbeat",{}]', "a", "MessageTypeNotSupported", True, "messageTypeId", 0),
        ('[2,"a",5,{}]', "a", "FormatViolation", True, "action", 2),
        ('[2,"a","Heartbeat"]', "a", "FormatViolation", True, "length", None),
        ('[2,"a","Heartbeat",[]]', "a", "FormatViolation", True, "payload", 3),
        ('[3,"a"]', "a", "FormatViolation", False, "length", None),
        ('[3,"a",7]', "a", "FormatViolation", False, "payload", 2),
        ('[4,"a","X"]', "a", "FormatViolation", False, "length", None),
        # a lone surrogate (valid JSON, no Unicode text), found by the OCPP fuzz test
        (
            '[2,"a","Heartbeat",{"customData":{"\\ud800":null}}]',
            "a",
            "RpcFrameworkError",
            True,
            "utf8",
            None,
        ),
        ('["\\udfff","a","Heartbeat",{}]', "a", "RpcFrameworkError", True, "utf8", None),
        ('[2,"\\ud800","Heartbeat",{}]', None, "RpcFrameworkError", True, "utf8", None),
        ('[3,"a",{"x":"\\ud800"}]', "a", "RpcFrameworkError", False, "utf8", None),
        # NUL (valid JSON, no text PostgreSQL can store or be asked about), in a value or a
        # key; an id holding it is not echoed
        ('[2,"a","Authorize",{"idTag":"R\\u0000"}]', "a", "RpcFrameworkError", True, "nul", None),
        ('[3,"a",{"x\\u0000":1}]', "a", "RpcFrameworkError", False, "nul", None),
        ('[2,"\\u0000","Heartbeat",{}]', None, "RpcFrameworkError", True, "nul", None),
    ],
)
def test_malformed_frames(
    frame: str, uid: str | None, code: str, reply: bool, constraint: str, element: int | None
) -> None:
    error = parse_frame(frame)
    assert isinstance(error, FrameError)
    assert (error.unique_id, error.code, error.reply) == (uid, code, reply)
    # the details name the rule (and the element of the frame) that failed, and so does the
    # description the charger reads
    assert error.details["constraint"] == constraint
    assert error.details.get("element") == element
    assert f"({constraint})" in error.description
    if element is not None:
        assert f"element {element}" in error.description


def test_a_call_error_carries_the_details_within_the_spec_limits() -> None:
    error = parse_frame('[2,"a","' + "Fly" * 40 + '",[]]')
    assert isinstance(error, FrameError)
    answer = error.to_call_error("2.0.1")
    assert answer.error_details == {
        "element": 3,
        "constraint": "payload",
        "detail": "expected a JSON object, got array",
    }
    assert answer.error_code == "FormatViolation"
    long = FrameError("a", "FormatViolation", "x" * 1000, details={"constraint": "json"})
    assert len(long.to_call_error("1.6").error_description) == 255  # string[255] in 2.0.1
    big = '[2,"big","DataTransfer",{"data":"' + "a" * 100 + '"}]'  # 136 bytes
    assert oversized(big, 64).unique_id == "big"
    assert oversized(big, 64).details == {
        "constraint": "maxFrameBytes",
        "detail": "136 bytes, above 64",
    }


def test_a_frame_nested_too_deep_is_refused_before_it_is_parsed() -> None:
    deep = '[2,"deep","DataTransfer",{"vendorId":"x","data":' + "[" * 5000 + "]" * 5000 + "}]"
    error = parse_frame(deep)  # once a RecursionError, logged, and no answer at all
    assert isinstance(error, FrameError)
    assert (error.unique_id, error.code, error.details["constraint"]) == (
        "deep",
        "FormatViolation",
        "depth",
    )
    assert f"deeper than {MAX_DEPTH} levels" in error.description
    bare = parse_frame("[" * 5000 + "]" * 5000)
    assert isinstance(bare, FrameError) and bare.unique_id is None
    just = '[2,"a","DataTransfer",{"vendorId":"x","data":' + "[" * 30 + "]" * 30 + "}]"
    assert isinstance(parse_frame(just), Call)  # 32 levels with the frame and the payload
    once_more = just.replace("[" * 30, "[" * 31).replace("]" * 30, "]" * 31)
    assert parse_frame(once_more).details["constraint"] == "depth"


def test_many_brackets_are_not_depth() -> None:
    """Many sibling arrays, brackets inside strings (an escaped quote too): shallow frames."""
    samples = [{"timestamp": "2026-11-27T00:00:00Z", "sampledValue": [{"value": str(n)}]}
               for n in range(40)]  # fmt: skip
    frame = json.dumps([2, "m", "MeterValues", {"connectorId": 1, "meterValue": samples}])
    assert isinstance(parse_frame(frame), Call)
    tricky = json.dumps([2, "s", "DataTransfer", {"vendorId": "x", "data": '"\\' + "[{" * 200}])
    assert isinstance(parse_frame(tricky), Call)


def test_nan_and_infinity_are_not_json() -> None:
    for constant in ("NaN", "Infinity", "-Infinity"):
        error = parse_frame('[2,"n","Heartbeat",{"x":' + constant + "}]")
        assert isinstance(error, FrameError)
        assert (error.unique_id, error.code, error.details["constraint"]) == (
            "n",
            "RpcFrameworkError",
            "json",
        )
        assert constant in error.details["detail"]


@pytest.mark.parametrize(
    "literal", ["1e999", "-1e999", "1" + "0" * 400 + ".5", "9" * 5000, "-" + "9" * 4301]
)
def test_a_number_python_cannot_hold_is_refused(literal: str) -> None:
    """Valid JSON, but beyond a double (Python reads it as infinity, which no schema bound
    catches and the library's Decimal checks trip on) or an integer longer than Python reads
    at all (it raised ValueError out of the parser): FormatViolation (over a connection:
    test_bad_input)."""
    error = parse_frame('[2,"n","Heartbeat",{"x":' + literal + "}]")
    assert isinstance(error, FrameError)
    assert (error.unique_id, error.code, error.details["constraint"]) == (
        "n",
        "FormatViolation",
        "number",
    )
    assert len(error.details["detail"]) < 200
    assert ("beyond a double" in error.details["detail"]) != (literal.lstrip("-").isdigit())


def test_numbers_a_double_holds_are_read() -> None:
    frame = parse_frame('[2,"n","Heartbeat",{"x":1e308,"y":-1.5e-999,"z":' + "9" * 4300 + "}]")
    assert isinstance(frame, Call)
    assert frame.payload["x"] == 1e308 and frame.payload["y"] == 0.0
    assert frame.payload["z"] == int("9" * 4300)


def test_error_codes_per_version() -> None:
    assert error_code_for("1.6", "FormatViolation") == "FormationViolation"
    assert error_code_for("2.0.1", "FormationViolation") == "FormatViolation"
    assert error_code_for("1.6", "OccurrenceConstraintViolation") == "OccurenceConstraintViolation"
    assert sniff_unique_id('[2, "abc", "DataTransfer", {"data": "...') == "abc"
    assert parse_frame(b"\xff").code == "RpcFrameworkError"


async def test_password_verifier_caches_successes_only() -> None:
    now = [0.0]
    verifier = PasswordVerifier(parallel=1, ttl_s=60, clock=lambda: now[0])
    stored = hash_password("s3cret-password")
    assert await verifier.verify("CP", "s3cret-password", stored)
    assert await verifier.verify("CP", "s3cret-password", stored)
    assert verifier.verifications == 1
    assert not await verifier.verify("CP", "wrong", stored)
    assert not await verifier.verify("CP", "wrong", stored)
    assert verifier.verifications == 3  # failures are never cached
    now[0] = 61
    assert await verifier.verify("CP", "s3cret-password", stored)
    assert verifier.verifications == 4  # expired entry
    assert not await verifier.verify("OTHER", "s3cret-password", stored + "x")


async def test_password_verifier_refuses_beyond_its_queue() -> None:
    verifier = PasswordVerifier(parallel=1, max_waiting=2)
    stored = hash_password("s3cret-password")
    results = await asyncio.gather(
        *(verifier.verify(f"CP{n}", "s3cret-password", stored) for n in range(3)),
        return_exceptions=True,
    )
    assert results[:2] == [True, True]
    assert isinstance(results[2], VerifierOverloaded)
    assert (verifier.verifications, verifier.overloads) == (2, 1)
    assert await verifier.verify("CP0", "s3cret-password", stored)  # cached: no queue needed


async def test_password_verifier_gives_refused_chargers_spread_appointments() -> None:
    now = [100.0]
    verifier = PasswordVerifier(parallel=1, max_waiting=1, clock=lambda: now[0])
    stored = hash_password("s3cret-password")
    first = asyncio.ensure_future(verifier.verify("CP0", "s3cret-password", stored))
    await asyncio.sleep(0)  # CP0 occupies the only place in the queue (its check is running)
    appointments = []  # the refusals below never yield to the loop: the queue stays full
    for n in range(1, 200):
        with pytest.raises(VerifierOverloaded) as refused:
            await verifier.verify(f"CP{n}", "s3cret-password", stored)
        appointments.append(refused.value.retry_after_s)
    assert await first
    # booked one after another at the measured speed (~20 ms each, headroom 1.1): later
    # refusals come back later, never before the minimum, never after the maximum
    assert appointments == sorted(appointments)
    assert appointments[0] == 3 and 3 < appointments[-1] <= 300
    assert len(set(appointments)) > 2

    # the queue is full again; CP150 comes back at its appointment and is let in anyway,
    # while a charger without one is refused
    blocker = asyncio.ensure_future(verifier.verify("CPX", "s3cret-password", stored))
    await asyncio.sleep(0)
    now[0] += appointments[149]
    booked = asyncio.ensure_future(verifier.verify("CP150", "s3cret-password", stored))
    await asyncio.sleep(0)
    with pytest.raises(VerifierOverloaded):
        await verifier.verify("CPY", "s3cret-password", stored)
    assert await blocker and await booked
    assert verifier.overloads == 200


class _Memory:
    """A transport that keeps what is sent."""

    def __init__(self) -> None:
        self.sent: list[list[Any]] = []

    async def recv(self) -> str:
        raise AssertionError("not read in these tests")

    async def send(self, message: str) -> None:
        self.sent.append(json.loads(message))

    async def close(self, reason: str) -> None:
        pass


class _Broken(CsmsChargePoint):
    """Answers Heartbeat with a payload its schema refuses (a bug of ours)."""

    _ocpp_version = "2.0.1"

    @on("Heartbeat")
    def on_heartbeat(self) -> Any:
        return call_result201.Heartbeat(current_time=5)


async def test_an_invalid_answer_of_ours_is_an_internal_error_not_the_chargers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = _Memory()
    cp = _Broken("OURS", transport, response_timeout_s=1, max_frame_bytes=65536)
    await cp.route_message('[2,"hb","Heartbeat",{}]')
    assert [frame[:3] for frame in transport.sent] == [[4, "hb", "InternalError"]]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "currentTime" in errors[0]  # logged with the failing path


@pytest.mark.parametrize("cls", [ChargePoint16, ChargePoint201])
def test_every_handler_takes_what_its_schema_allows(cls: type[CsmsChargePoint]) -> None:
    """Every member a request's schema allows reaches its handler (snake_cased) without a
    TypeError: in 2.0.1 that includes ``customData`` in every message."""
    for _, handler in inspect.getmembers(cls, lambda m: hasattr(m, "_on_action")):
        version = "1.6" if cls is ChargePoint16 else "2.0.1"
        schema = get_validator(MessageType.Call, handler._on_action, version).schema
        parameters = inspect.signature(handler).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            continue
        allowed = set(to_snake(dict.fromkeys(schema.get("properties", {}))))
        assert allowed <= set(parameters), (handler._on_action, allowed - set(parameters))
