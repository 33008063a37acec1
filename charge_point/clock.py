"""Clocks of the charger: a scaled wall clock for runs and a manual clock for unit tests.

``now()`` is simulated epoch seconds (UTC). ``time_scale`` makes simulated time run X times
faster than real time, so a test can charge for an hour in a few seconds; every timer of the
charger (meter interval, heartbeat, display timeouts) is expressed in simulated seconds and
waits through :meth:`Clock.sleep`. ``set()`` is how the CSMS's time (BootNotification
``currentTime``, Heartbeat) corrects the clock.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What the station needs from a clock."""

    @property
    def time_scale(self) -> float: ...

    def now(self) -> float:
        """Simulated epoch seconds."""
        ...

    def set(self, epoch_s: float) -> None:
        """Sets the current time (from the CSMS)."""
        ...

    async def sleep(self, simulated_s: float) -> None:
        """Waits for ``simulated_s`` of simulated time."""
        ...


class ScaledClock:
    """Wall clock that runs ``time_scale`` times faster from the moment it was created/set."""

    def __init__(self, time_scale: float = 1.0, *, start: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._scale = time_scale
        self._base = time.time() if start is None else start
        self._mono0 = time.monotonic()

    @property
    def time_scale(self) -> float:
        return self._scale

    def now(self) -> float:
        return self._base + (time.monotonic() - self._mono0) * self._scale

    def set(self, epoch_s: float) -> None:
        self._base = epoch_s
        self._mono0 = time.monotonic()

    async def sleep(self, simulated_s: float) -> None:
        await asyncio.sleep(max(0.0, simulated_s) / self._scale)


class ManualClock:
    """A clock that moves only when told (unit tests); ``sleep`` yields without waiting."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    @property
    def time_scale(self) -> float:
        return 1.0

    def now(self) -> float:
        return self._now

    def set(self, epoch_s: float) -> None:
        self._now = epoch_s

    def advance(self, seconds: float) -> float:
        self._now += seconds
        return self._now

    async def sleep(self, simulated_s: float) -> None:
        await asyncio.sleep(0)
