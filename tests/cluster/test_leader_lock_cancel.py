"""A leader being stopped is never kept running by its own heartbeat.

On Python 3.11 ``asyncio.wait_for`` returns its awaitable's result when the waiting task is
cancelled at the moment that awaitable completes: the cancellation is lost. The heartbeat
(``LeaderLock.held``) waited that way, so an app shutting down could cancel the leadership
task during a heartbeat and find it heartbeating on forever (a test run hung in teardown)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from csms.store.leader_lock import LeaderLock


class _Answer:
    def scalar_one(self) -> bool:
        return True


class _CancelledWhileAnswering:
    """A connection whose answer arrives in the same step as the caller's cancellation."""

    def __init__(self, caller: asyncio.Task[Any]) -> None:
        self.caller = caller

    async def execute(self, *_args: Any) -> _Answer:
        self.caller.cancel()
        return _Answer()


async def test_a_heartbeat_cancelled_as_it_is_answered_stays_cancelled() -> None:
    lock = LeaderLock("postgresql+asyncpg://unused/db", node_id="n1", lease_s=10, timeout_s=5)

    async def heartbeat() -> bool:
        lock._conn = _CancelledWhileAnswering(asyncio.current_task())  # type: ignore[arg-type,assignment]
        return await lock.held()

    task = asyncio.create_task(heartbeat())
    with pytest.raises(asyncio.CancelledError):
        await task
