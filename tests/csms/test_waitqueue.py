"""The one-reader queue under every connection's inbox and outbox (:mod:`csms.waitqueue`)."""

from __future__ import annotations

import asyncio

import pytest

from csms.waitqueue import WaitQueue


async def test_items_come_out_in_order_and_the_waiting_reader_is_woken() -> None:
    queue: WaitQueue[str] = WaitQueue()
    reader = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not reader.done()
    queue.put_nowait("first")
    queue.put_nowait("second")
    assert await reader == "first"
    assert len(queue) == 1 and not queue.empty()
    assert queue.get_nowait() == "second"
    assert queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_bounded_queue_refuses_past_its_size_and_takes_again_once_read() -> None:
    queue: WaitQueue[int] = WaitQueue(2)
    queue.put_nowait(1)
    queue.put_nowait(2)
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait(3)
    assert await queue.get() == 1
    queue.put_nowait(3)
    assert [queue.get_nowait(), queue.get_nowait()] == [2, 3]


def test_an_unbounded_queue_takes_everything() -> None:
    queue: WaitQueue[int] = WaitQueue()
    for i in range(1000):
        queue.put_nowait(i)
    assert len(queue) == 1000


async def test_a_cancelled_reader_leaves_the_queue_usable() -> None:
    queue: WaitQueue[str] = WaitQueue(1)
    reader = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    queue.put_nowait("later")
    assert await queue.get() == "later"


async def test_a_reader_woken_for_an_item_taken_meanwhile_waits_again() -> None:
    queue: WaitQueue[str] = WaitQueue()
    reader = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("stolen")
    assert queue.get_nowait() == "stolen"  # before the woken reader runs
    await asyncio.sleep(0)
    assert not reader.done()
    queue.put_nowait("its own")
    assert await reader == "its own"
