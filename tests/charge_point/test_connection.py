"""The charger's OCPP connection without sockets: frames in as strings, frames out in a list."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from ocpp.exceptions import InternalError, UnknownCallErrorCodeError
from ocpp.v16 import call, call_result

from charge_point.protocol.commands import handles
from charge_point.protocol.connection import Connection


class Wire:
    def __init__(self) -> None:
        self.sent: list[list[Any]] = []
        self.frame = asyncio.Event()

    async def send(self, message: str) -> None:
        self.sent.append(json.loads(message))
        self.frame.set()

    async def next_frame(self) -> list[Any]:
        await self.frame.wait()
        self.frame.clear()
        return self.sent[-1]


class Tiny16(Connection):
    version = "1.6"
    call_results = call_result

    @handles("Reset")
    def on_reset(self, type: str) -> call_result.Reset:
        if type == "Hard":
            raise RuntimeError("a bug in a handler")
        return call_result.Reset(status="Accepted")


def tiny(timeout: float = 5) -> tuple[Tiny16, Wire]:
    wire = Wire()
    return Tiny16("CP1", wire, timeout=timeout), wire


async def test_a_call_of_the_csms_is_answered_by_its_handler() -> None:
    cp, wire = tiny()
    await cp.route_message('[2,"r1","Reset",{"type":"Soft"}]')
    assert wire.sent == [[3, "r1", {"status": "Accepted"}]]


async def test_a_failing_handler_is_an_internal_error() -> None:
    cp, wire = tiny()
    await cp.route_message('[2,"r2","Reset",{"type":"Hard"}]')
    assert wire.sent == [[4, "r2", "InternalError", "An unexpected error occurred.", {}]]


async def test_a_request_without_handler_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    cp, wire = tiny()
    await cp.route_message('[2,"u1","ReserveNow",{}]')
    await cp.route_message('[2,"u2","NoSuchAction",{}]')
    assert [frame[:3] for frame in wire.sent] == [
        [4, "u1", "NotImplemented"],
        [4, "u2", "NotSupported"],
    ]
    warnings = [r for r in caplog.records if "does not implement" in r.getMessage()]
    assert len(warnings) == 2 and all(r.exc_info is None for r in warnings)


async def test_a_malformed_call_is_answered_in_the_versions_spelling() -> None:
    cp, wire = tiny()
    await cp.route_message('[2,"m1","Reset"]')
    assert wire.sent[0][:3] == [4, "m1", "FormationViolation"]
    await cp.route_message('[2,"m2","Reset",{"type":"Nope"}]')  # breaks the schema
    assert wire.sent[1][:2] == [4, "m2"]


async def test_our_call_returns_the_answer_as_a_dataclass() -> None:
    cp, wire = tiny()
    calling = asyncio.create_task(cp.call(call.Heartbeat()))
    frame = await wire.next_frame()
    assert frame[0] == 2 and frame[2:] == ["Heartbeat", {}]
    await cp.route_message(json.dumps([3, frame[1], {"currentTime": "2030-01-01T00:00:00Z"}]))
    assert await calling == call_result.Heartbeat(current_time="2030-01-01T00:00:00Z")


async def test_a_callerror_raises_never_returns_none() -> None:
    cp, wire = tiny()
    calling = asyncio.create_task(cp.call(call.Heartbeat()))
    frame = await wire.next_frame()
    await cp.route_message(json.dumps([4, frame[1], "InternalError", "store down", {}]))
    with pytest.raises(InternalError):
        await calling
    calling = asyncio.create_task(cp.call(call.Heartbeat()))
    frame = await wire.next_frame()
    await cp.route_message(json.dumps([4, frame[1], "VendorSpecific", "", {}]))
    with pytest.raises(UnknownCallErrorCodeError):
        await calling


async def test_calls_wait_their_turn_one_in_flight() -> None:
    cp, wire = tiny()
    first = asyncio.create_task(cp.call(call.Heartbeat()))
    second = asyncio.create_task(cp.call(call.Heartbeat()))
    frame = await wire.next_frame()
    await asyncio.sleep(0.01)
    assert len(wire.sent) == 1  # the second waits for the first's answer
    await cp.route_message(json.dumps([3, frame[1], {"currentTime": "2030-01-01T00:00:00Z"}]))
    frame = await wire.next_frame()
    await cp.route_message(json.dumps([3, frame[1], {"currentTime": "2030-01-01T00:00:01Z"}]))
    assert (await first).current_time < (await second).current_time


async def test_a_late_answer_is_dropped_after_a_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cp, wire = tiny(timeout=0.01)
    with pytest.raises(TimeoutError):
        await cp.call(call.Heartbeat())
    late = wire.sent[0][1]
    await cp.route_message(json.dumps([3, late, {"currentTime": "2030-01-01T00:00:00Z"}]))
    assert any("dropped an answer" in r.getMessage() for r in caplog.records)
