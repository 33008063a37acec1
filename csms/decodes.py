"""A bound on decoding uploaded photos: :class:`DecodeGate`.

* :class:`DecodeGate` lets a fixed number of photo decodes run at once, on threads of its own
  (each decode holds a greyscale frame and the decoder's working copies), with a short line
  behind them; a request beyond that is told to come back (503) instead of queueing memory
  without bound.
* :func:`give_back_freed_memory` asks glibc to return freed heap pages to the system after a
  decode: large frames freed by worker threads otherwise stay in their arenas for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from csms import heap
from csms.errors import CsmsError

T = TypeVar("T")


class GateFull(CsmsError):
    """Every decode slot is busy and the line behind them is full."""


class DecodeGate:
    """Runs photo decodes on ``slots`` threads of its own, with at most ``waiting`` more in line.

    Own threads rather than the event loop's default pool: the decoder keeps per-thread working
    buffers, so the memory a burst of uploads leaves behind is bounded by ``slots``, not by the
    size of a shared pool."""

    def __init__(self, *, slots: int = 2, waiting: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="photo-decode")
        self._capacity = slots + waiting
        self._admitted = 0

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a decode thread; raises :class:`GateFull` when the line is full."""
        if self._admitted >= self._capacity:
            raise GateFull
        self._admitted += 1
        try:
            return await asyncio.wrap_future(self._pool.submit(_then_trim, work, *args))
        finally:
            self._admitted -= 1

    def close(self) -> None:
        """Stops the decode threads (decodes not yet started are cancelled)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _then_trim(work: Callable[..., T], *args: Any) -> T:
    try:
        return work(*args)
    finally:
        give_back_freed_memory()


def give_back_freed_memory() -> None:
    """Returns the heap's free pages to the system (glibc ``malloc_trim``; elsewhere a no-op)."""
    heap.trim()
