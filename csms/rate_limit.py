"""How often one driver or one client address may do a thing: token buckets per key.

Each key has a bucket of ``per_minute`` tokens that refills at ``per_minute`` tokens a minute;
an action spends one. A key whose bucket is empty is told how many seconds until the next
token (the ``Retry-After`` of a 429). A burst of ``per_minute`` actions passes at once, so a
driver retrying a photo a few times is never held; only a sustained rate above the limit is.

In memory, per process, and bounded: at most ``max_entries`` buckets, the least recently used
forgotten first (a forgotten bucket starts full again, which only ever favours its key).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # when ``tokens`` was last brought up to date


class RateLimiter:
    """Token buckets of ``per_minute`` per key; ``per_minute = 0`` allows everything."""

    def __init__(
        self,
        *,
        per_minute: int,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0  # tokens per second
        self._max_entries = max_entries
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._capacity > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def retry_after(self, key: str) -> int:
        """0 when ``key`` may act now, else the whole seconds until it may."""
        if not self.enabled:
            return 0
        tokens = self._tokens(key, self._clock())
        return 0 if tokens >= 1 else math.ceil((1 - tokens) / self._rate)

    def spend(self, key: str) -> None:
        """Counts one action of ``key`` (after :meth:`retry_after` allowed it)."""
        if not self.enabled:
            return
        now = self._clock()
        self._buckets[key] = _Bucket(self._tokens(key, now) - 1, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_entries:
            self._buckets.popitem(last=False)

    def _tokens(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return self._capacity
        return min(self._capacity, bucket.tokens + max(0.0, now - bucket.at) * self._rate)
