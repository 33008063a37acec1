"""A queue with one reader, for what every connection holds one of (its inbox of frames, its
outbox of CALLs): the part of ``asyncio.Queue`` they use (``put_nowait``, ``get``,
``get_nowait``, ``empty``, ``len``), bounded or not, at a fraction of its memory and cost (no
putters to wake, no join bookkeeping, no future made while items wait)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class WaitQueue(Generic[T]):
    """FIFO with at most one waiting reader; ``maxsize`` > 0 bounds it (``put_nowait`` then
    raises ``asyncio.QueueFull``), 0 does not."""

    __slots__ = ("_items", "_maxsize", "_waiter")

    def __init__(self, maxsize: int = 0) -> None:
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: T) -> None:
        if self._maxsize and len(self._items) >= self._maxsize:
            raise asyncio.QueueFull
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def get_nowait(self) -> T:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self) -> T:
        """The first item, once there is one (one reader: a second one waiting at the same time
        would take the first one's wake-up)."""
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        return self._items.popleft()
