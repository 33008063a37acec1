"""How often settlements may be uploaded: per driver and per client address.

Every upload costs a signature check and a transaction, a photo a decode on top, and a
refused one leaves evidence in the database; without a bound, one signed-in client could
send them as fast as the server answers. :class:`UploadRate` admits an upload when both the
driver's and the client address's buckets (:class:`~csms.rate_limit.RateLimiter`) have a
token, and spends one of each; otherwise :class:`UploadsTooFrequent` carries the seconds
until both have (the ``Retry-After`` of the 429). The address bucket covers photos and JSON
alike, so several accounts behind one address share it.

:class:`UploadRate` counts in this process (:class:`LocalUploadRate` is the route's view of
it); :class:`SharedUploadRate` keeps the same buckets in Redis, so the workers and nodes of a
cluster spend one budget instead of one each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from csms.errors import CsmsError
from csms.rate_limit import RateLimiter

LOG = logging.getLogger("csms.upload_rate")


class UploadsTooFrequent(CsmsError):
    """The driver or the address uploaded too often; try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many settlement uploads; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class UploadRate:
    """Admits settlement uploads at ``per_driver`` a minute per driver and ``per_client`` a
    minute per client address (0 turns either off)."""

    def __init__(
        self,
        *,
        per_driver: int,
        per_client: int,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._driver = RateLimiter(per_minute=per_driver, max_entries=max_entries, clock=clock)
        self._client = RateLimiter(per_minute=per_client, max_entries=max_entries, clock=clock)

    @classmethod
    def off(cls) -> UploadRate:
        """Admits every upload (a context built without settings)."""
        return cls(per_driver=0, per_client=0)

    def admit(self, user_id: int, client: str | None) -> None:
        """Counts an upload of driver ``user_id`` from ``client``, or raises
        :class:`UploadsTooFrequent` without counting it."""
        driver_key = str(user_id)
        wait = self._driver.retry_after(driver_key)
        if client is not None:
            wait = max(wait, self._client.retry_after(client))
        if wait:
            raise UploadsTooFrequent(wait)
        self._driver.spend(driver_key)
        if client is not None:
            self._client.spend(client)


class UploadGate(Protocol):
    """Where the route counts uploads: this process (:class:`LocalUploadRate`) or, in a
    cluster, Redis (:class:`SharedUploadRate`)."""

    async def admit(self, user_id: int, client: str | None) -> None: ...


class LocalUploadRate:
    """:class:`UploadGate` on an :class:`UploadRate` of this process."""

    def __init__(self, rate: UploadRate) -> None:
        self.rate = rate

    @classmethod
    def off(cls) -> LocalUploadRate:
        return cls(UploadRate.off())

    async def admit(self, user_id: int, client: str | None) -> None:
        self.rate.admit(user_id, client)


_TTL_MS = 61_000  # a bucket is full a minute after its last spend; one second to spare

# UploadRate.admit on Redis hashes (tokens, at), atomic across nodes: every bucket is brought
# up to date; when one lacks a token the longest wait is returned and nothing is spent, else
# each gives one. KEYS: the buckets; ARGV: now, TTL (ms), then each bucket's size and rate
# (tokens a second). Numbers are stored with 17 digits so they read back exactly.
_ADMIT = """
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens, wait = {}, 0
for i, key in ipairs(KEYS) do
    local size, rate = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
    local h = redis.call('HMGET', key, 'tokens', 'at')
    local t = size
    if h[1] then
        t = math.min(size, tonumber(h[1]) + math.max(0, now - tonumber(h[2])) * rate)
    end
    tokens[i] = t
    if t < 1 then wait = math.max(wait, math.ceil((1 - t) / rate)) end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
    redis.call('HSET', key, 'tokens', string.format('%.17g', tokens[i] - 1),
               'at', string.format('%.17g', now))
    redis.call('PEXPIRE', key, ttl)
end
return 0
"""


class SharedUploadRate:
    """:class:`UploadGate` whose buckets live in Redis under ``prefix``, so the processes and
    nodes of a cluster spend one budget per driver and per address (the rules of
    :class:`UploadRate`, on the epoch seconds of ``clock``).

    A bucket refills completely within a minute of its last spend, so its key expires then:
    a forgotten bucket is exactly a full one, and Redis holds only the keys active in the last
    minute. When Redis cannot be reached the node counts in its own ``fallback`` (a warning
    once, not per upload) and leaves Redis alone for ``retry_s`` before asking it again, so an
    outage neither refuses uploads nor makes each one wait for a timeout.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        per_driver: int,
        per_client: int,
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:uploads"
        self._per_driver = per_driver
        self._per_client = per_client
        self._retry_s = retry_s
        self._clock = clock
        self._admit = redis.register_script(_ADMIT)
        self._down_until: float | None = None  # Redis failed: the fallback counts until then
        self.fallback = UploadRate(per_driver=per_driver, per_client=per_client, clock=clock)

    async def admit(self, user_id: int, client: str | None) -> None:
        keys: list[str] = []
        args: list[float | int] = []
        if self._per_driver > 0:
            keys.append(f"{self._prefix}:driver:{user_id}")
            args += [self._per_driver, self._per_driver / 60.0]
        if self._per_client > 0 and client is not None:
            keys.append(f"{self._prefix}:client:{client}")
            args += [self._per_client, self._per_client / 60.0]
        if not keys:
            return
        now = self._clock()
        if self._down_until is not None and now < self._down_until:
            self.fallback.admit(user_id, client)
            return
        try:
            wait = int(await self._admit(keys=keys, args=[now, _TTL_MS, *args]))
        except RedisError as exc:
            if self._down_until is None:
                LOG.warning("upload rate: Redis unreachable (%s), counting in this process", exc)
            self._down_until = now + self._retry_s
            self.fallback.admit(user_id, client)
            return
        if self._down_until is not None:
            LOG.info("upload rate: Redis reachable again, counting across nodes")
            self._down_until = None
        if wait:
            raise UploadsTooFrequent(wait)
