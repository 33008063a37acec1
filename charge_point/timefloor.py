"""Time that cannot go back.

The charger keeps a durable floor = max(last time the CSMS told it, largest ``iat`` it
verified) and uses ``max(clock, floor, last value returned)`` as now, so neither a reset RTC
nor a replayed old token can move its notion of time backwards. Whether the CSMS ever set the
time is remembered too: an unsynchronised clock is a policy decision
(``cp_accept_unsynced_clock``), never silently trusted.
"""

from __future__ import annotations

from charge_point.clock import Clock
from charge_point.store import Store


class TimeFloor:
    """The station's view of now."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._last = 0.0
        self._floor = float(store.get("time_floor", 0))  # this object is the only writer

    @property
    def floor(self) -> float:
        return self._floor

    @property
    def synced(self) -> bool:
        return bool(self._store.get("clock_synced", False))

    def now(self) -> float:
        self._last = max(self._last, self._clock.now(), self.floor)
        return self._last

    def raise_floor(self, t: float) -> None:
        """Moves the durable floor up to ``t`` (never down)."""
        if t > self._floor:
            self._store.put("time_floor", t)
            self._floor = t

    def set_from_csms(self, epoch_s: float) -> None:
        """The CSMS's time: it corrects the clock and moves the durable floor up."""
        self._clock.set(epoch_s)
        with self._store.atomic():
            self.raise_floor(epoch_s)
            self._store.put("clock_synced", True)
