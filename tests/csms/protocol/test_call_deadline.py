"""The deadline of an incoming CALL's handling: one timer per connection, moved along, with the
answers of ``asyncio.timeout`` per CALL (csms/protocol/deadline.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from csms.protocol.base import CsmsChargePoint, on
from tests.csms.protocol.test_answers import FakeTransport

DEADLINE_S = 0.1
TIMED_OUT = "the CSMS did not finish in time"


class Quick(CsmsChargePoint):
    """A 1.6 connection whose CALLs have DEADLINE_S."""

    _ocpp_version = "1.6"

    def __init__(self, transport: FakeTransport) -> None:
        super().__init__(
            "CP1",
            transport,
            response_timeout_s=1,
            max_frame_bytes=65536,
            handler_deadline_s=DEADLINE_S,
        )


class Slow(Quick):
    """Heartbeats take ``self.delay_s``; a DataTransfer stalls until released."""

    def __init__(self, transport: FakeTransport) -> None:
        super().__init__(transport)
        self.delay_s = 0.0
        self.released = asyncio.Event()

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        await asyncio.sleep(self.delay_s)
        return call_result.Heartbeat(current_time="2026-01-01T00:00:00Z")

    @on(Action.data_transfer)
    async def on_data_transfer(self, **kw: Any) -> call_result.DataTransfer:
        await self.released.wait()
        return call_result.DataTransfer(status="Accepted")


def heartbeat(uid: str) -> str:
    return f'[2,"{uid}","Heartbeat",{{}}]'


def stall(uid: str) -> str:
    return f'[2,"{uid}","DataTransfer",{{"vendorId":"x"}}]'


async def test_a_stalled_call_after_a_slow_one_gets_its_own_whole_deadline() -> None:
    """The timer armed for the first CALL's deadline finds a later CALL being handled: it
    waits for that one's deadline, not the first's."""
    transport = FakeTransport()
    cp = Slow(transport)
    cp.delay_s = DEADLINE_S * 0.6
    await cp.route_message(heartbeat("a"))
    started = time.monotonic()
    await cp.route_message(stall("b"))
    took = time.monotonic() - started
    assert transport.sent[0][:2] == [3, "a"]
    assert transport.sent[1] == [4, "b", "InternalError", TIMED_OUT, {}]
    assert took >= DEADLINE_S * 0.95, took


async def test_after_a_timeout_the_next_call_is_answered_and_nothing_stays_cancelled() -> None:
    transport = FakeTransport()
    cp = Slow(transport)
    await cp.route_message(stall("a"))
    await cp.route_message(heartbeat("b"))
    await asyncio.sleep(DEADLINE_S * 1.5)  # the timer, if one is left, finds nothing to do
    await cp.route_message(heartbeat("c"))
    assert [m[:2] for m in transport.sent] == [[4, "a"], [3, "b"], [3, "c"]]
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_cancellation_from_outside_goes_on_and_is_not_answered() -> None:
    """The connection closing cancels the reader while a handler runs: that is not a timeout."""
    transport = FakeTransport()
    cp = Slow(transport)
    reader = asyncio.create_task(cp.route_message(stall("a")))
    await asyncio.sleep(DEADLINE_S / 4)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert reader.cancelled()
    assert transport.sent == []
    cp.fail_pending()  # the endpoint's teardown: the timer goes with the connection
    assert cp._deadline._timer is None


async def test_one_timer_serves_a_connection_s_calls() -> None:
    """asyncio.timeout made a timer per CALL (and cancelled it)."""
    transport = FakeTransport()
    cp = Slow(transport)
    loop = asyncio.get_running_loop()
    made: list[float] = []
    call_at = loop.call_at

    def counting(when: float, callback: Any, *args: Any, **kw: Any) -> asyncio.TimerHandle:
        made.append(when)  # every timer made while the CALLs are handled
        return call_at(when, callback, *args, **kw)

    loop.call_at = counting  # type: ignore[method-assign]
    try:
        for n in range(50):
            await cp.route_message(heartbeat(str(n)))
    finally:
        loop.call_at = call_at  # type: ignore[method-assign]
    assert len(transport.sent) == 50
    assert len(made) == 1


class Interrupted(Quick):
    """A Heartbeat whose deadline's CancelledError does not come out of the handler as such:
    turned into another error, answered anyway, or lost by Python 3.11's ``asyncio.wait_for``
    to a result that arrived in the same turn of the loop (it then drops the cancel)."""

    def __init__(self, transport: FakeTransport, how: str) -> None:
        super().__init__(transport)
        self.how = how

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        now = "2026-01-01T00:00:00Z"
        if self.how == "wait_for":  # the answer and the deadline in one loop iteration
            loop = asyncio.get_running_loop()
            answer: asyncio.Future[str] = loop.create_future()
            at = loop.time() + DEADLINE_S
            loop.call_at(at - 0.006, time.sleep, 0.01)  # the loop stalls a moment (load, GC)
            loop.call_at(at - 0.005, answer.set_result, now)
            return call_result.Heartbeat(current_time=await asyncio.wait_for(answer, 10))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if self.how == "converted":
                raise RuntimeError("interrupted") from None
            return call_result.Heartbeat(current_time=now)  # "swallowed": answers anyway
        raise AssertionError

    @on(Action.data_transfer)
    async def on_data_transfer(self, **kw: Any) -> call_result.DataTransfer:
        await asyncio.Event().wait()  # stalls: its deadline passes
        return call_result.DataTransfer(status="Accepted")


@pytest.mark.parametrize("how", ["converted", "swallowed", "wait_for"])
async def test_after_a_cancel_that_did_not_come_out_the_next_timeout_is_answered(
    how: str,
) -> None:
    transport = FakeTransport()
    cp = Interrupted(transport, how)
    task = asyncio.current_task()
    assert task is not None
    await cp.route_message('[2,"a","Heartbeat",{}]')
    assert transport.sent[0][1] == "a"  # answered (a result, or an InternalError)
    assert task.cancelling() == 0, "the deadline's cancel is still counted on the task"
    # the next CALL that stalls: as with asyncio.timeout, a CALLERROR, not a CancelledError
    # leaving route_message (in read_frames: the reader ends, the charger is disconnected)
    await cp.route_message('[2,"b","DataTransfer",{"vendorId":"x"}]')
    assert transport.sent[1] == [4, "b", "InternalError", TIMED_OUT, {}]
