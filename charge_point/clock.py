"""Clocks of the charger: the wall clock for runs and a manual clock for unit tests.

``now()`` is epoch seconds (UTC). The charger's clock always runs at real speed: timestamps,
token validity, the time floor, identification codes, heartbeats and every other timer are
true time, so any CSMS that checks times accepts them. (``--time-scale`` makes the simulated
EV draw more power, see :mod:`charge_point.meter`; it never touches the clock.) ``set()`` is
how the CSMS's time (BootNotification ``currentTime``, Heartbeat) corrects the clock.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What the station needs from a clock."""

    def now(self) -> float:
        """Epoch seconds."""
        ...

    def set(self, epoch_s: float) -> None:
        """Sets the current time (from the CSMS)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Waits for ``seconds`` of this clock's time."""
        ...


class WallClock:
    """The system's time, then steady (monotonic) from the moment it was created or set, so a
    step of the host's clock does not move the charger's; the CSMS's time corrects it."""

    def __init__(self) -> None:
        self._base = time.time()
        self._mono0 = time.monotonic()

    def now(self) -> float:
        return self._base + (time.monotonic() - self._mono0)

    def set(self, epoch_s: float) -> None:
        self._base = epoch_s
        self._mono0 = time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told (unit tests); ``sleep`` yields without waiting."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def set(self, epoch_s: float) -> None:
        self._now = epoch_s

    def advance(self, seconds: float) -> float:
        self._now += seconds
        return self._now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)
