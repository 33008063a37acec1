"""Every CALL gets an answer: CALLRESULT or CALLERROR, however the handler fails or stalls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from csms.protocol.base import CsmsChargePoint, on
from csms.store.writer import StoreBusy


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[list[Any]] = []

    async def recv(self) -> str:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(self, message: str) -> None:
        self.sent.append(json.loads(message))

    async def close(self, reason: str) -> None:
        pass


class Stubborn(CsmsChargePoint):
    """Handlers that stall, fail in the store, or produce an answer that fails validation."""

    _ocpp_version = "1.6"

    def __init__(self, transport: FakeTransport) -> None:
        super().__init__(
            "CP1", transport, response_timeout_s=1, max_frame_bytes=65536, handler_deadline_s=0.05
        )
        self.released = asyncio.Event()

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        await self.released.wait()  # a store that never answers
        return call_result.Heartbeat(current_time="2026-01-01T00:00:00Z")

    @on(Action.status_notification)
    async def on_status(self, **kw: Any) -> call_result.StatusNotification:
        raise StoreBusy("20000 store operations already waiting")

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": "NotAStatus"})


async def test_stalled_handler_is_answered_with_internal_error() -> None:
    transport = FakeTransport()
    cp = Stubborn(transport)
    await cp.route_message('[2,"a","Heartbeat",{}]')
    assert transport.sent == [[4, "a", "InternalError", "the CSMS did not finish in time", {}]]


async def test_store_failure_is_answered_with_internal_error() -> None:
    transport = FakeTransport()
    cp = Stubborn(transport)
    frame = (
        '[2,"b","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available"}]'
    )
    await cp.route_message(frame)
    assert [(m[0], m[1], m[2]) for m in transport.sent] == [(4, "b", "InternalError")]


async def test_invalid_answer_is_replaced_by_a_callerror() -> None:
    transport = FakeTransport()
    cp = Stubborn(transport)
    await cp.route_message('[2,"c","Authorize",{"idTag":"T1"}]')
    assert len(transport.sent) == 1
    kind, uid, *_ = transport.sent[0]
    assert (kind, uid) == (4, "c")
