"""Wrong charger passwords are throttled per client address (in this process, or in Redis
for a cluster: :class:`SharedPasswordThrottle`, the same rules counted across nodes).

A Basic-auth guess costs the attacker one handshake and the CSMS one argon2 verification: with
nothing in the way, an address could try a charger's password as fast as the threads verify.
Failures are counted within ``window_s`` and a key at its limit is held back: its handshakes
get 429 with ``Retry-After`` before anything is looked up or verified (a right password
included, or the answer would say when a guess was right). Each hold of the same key doubles,
up to ``MAX_BACKOFF_FACTOR`` times ``lockout_s``, until the key has been quiet for a window.

* (charger id, client address): ``max_failures`` wrong passwords;
* client address: wrong passwords for ``client_factor`` x ``max_failures`` distinct charger
  ids, against one address walking through the fleet (a charger retrying one wrong password
  counts once, so a few misconfigured chargers behind a shared address do not hold the others);
* charger id: after ``charger_factor`` x ``max_failures`` wrong passwords for it from anywhere
  (guessing spread over many addresses), every address gets ONE wrong guess at it before its
  (charger, address) hold, instead of ``max_failures``.

Nothing ever holds an address because of failures from other addresses: the charger-wide count
only shortens each address's own budget, so the real charger, presenting its right password
from an address without failures of its own, is let in at once however many others guess. A
reconnect storm of chargers with their right passwords counts nothing at all. Memory is
bounded: at most ``max_entries`` keys, the least recently used forgotten first.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from csms.errors import ChargerAuthError

LOG = logging.getLogger("csms.password_throttle")

MAX_BACKOFF_FACTOR = 16  # the longest hold, in multiples of ``lockout_s``


class PasswordThrottled(ChargerAuthError):
    """This address guessed wrong too often; it may try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many wrong passwords; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class _Count:
    since: float  # start of the counting window
    last: float  # the latest failure
    failures: int = 0
    holds: int = 0  # holds so far: the next one lasts lockout_s * 2 ** holds (capped)
    held_until: float = 0.0
    charger_ids: set[str] = field(default_factory=set)  # client keys: the ids it failed at


class PasswordThrottle:
    """Counts wrong charger passwords; :meth:`check` raises :class:`PasswordThrottled`."""

    def __init__(
        self,
        *,
        max_failures: int,
        lockout_s: float,
        window_s: float = 900.0,
        client_factor: int = 10,
        charger_factor: int = 4,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._lockout_s = lockout_s
        self._window_s = window_s
        self._client_max = max_failures * client_factor
        self._charger_max = max_failures * charger_factor
        self._max_entries = max_entries
        self._clock = clock
        self._counts: OrderedDict[tuple[str, str], _Count] = OrderedDict()

    @classmethod
    def off(cls) -> PasswordThrottle:
        """A throttle that never holds anyone (contexts built without settings)."""
        return cls(max_failures=0, lockout_s=0)

    @property
    def enabled(self) -> bool:
        return self._max > 0

    def __len__(self) -> int:
        return len(self._counts)

    def check(self, charger_id: str, client: str | None) -> None:
        """Raises :class:`PasswordThrottled` while the (charger, client) pair or the client
        is held back."""
        if not self.enabled:
            return
        now = self._clock()
        for key in self._held_keys(charger_id, client):
            count = self._counts.get(key)
            if count is not None and count.held_until > now:
                raise PasswordThrottled(math.ceil(count.held_until - now))

    def failed(self, charger_id: str, client: str | None) -> None:
        """Counts a wrong password for ``charger_id`` from ``client``."""
        if not self.enabled:
            return
        now = self._clock()
        spread = self._counted(("charger", charger_id), now)
        spread.failures += 1
        pair_max = 1 if spread.failures >= self._charger_max else self._max
        pair = self._counted(self._pair(charger_id, client), now)
        pair.failures += 1
        if pair.failures >= pair_max:
            self._hold(pair, now)
        if client:
            address = self._counted(("client", client), now)
            address.charger_ids.add(charger_id)
            if len(address.charger_ids) >= self._client_max:
                self._hold(address, now)
        while len(self._counts) > self._max_entries:
            self._counts.popitem(last=False)

    def succeeded(self, charger_id: str, client: str | None) -> None:
        """The right password: the pair starts afresh."""
        self._counts.pop(self._pair(charger_id, client), None)

    def _counted(self, key: tuple[str, str], now: float) -> _Count:
        """The key's count, its window restarted when it has passed (and its holds forgotten
        when the key has been quiet for a window)."""
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = _Count(since=now, last=now)
        elif now - count.since > self._window_s:
            quiet = now - max(count.last, count.held_until) > self._window_s
            count.since, count.failures, count.charger_ids = now, 0, set()
            if quiet:
                count.holds = 0
        count.last = now
        self._counts.move_to_end(key)
        return count

    def _hold(self, count: _Count, now: float) -> None:
        factor = min(MAX_BACKOFF_FACTOR, 2**count.holds)
        count.held_until = now + self._lockout_s * factor
        count.holds += 1
        count.since, count.failures, count.charger_ids = now, 0, set()

    @staticmethod
    def _pair(charger_id: str, client: str | None) -> tuple[str, str]:
        return ("pair", f"{charger_id} {client or ''}")

    def _held_keys(self, charger_id: str, client: str | None) -> list[tuple[str, str]]:
        keys = [self._pair(charger_id, client)]
        if client:
            keys.append(("client", client))
        return keys


class PasswordGuard(Protocol):
    """Where the endpoint counts wrong charger passwords: this process
    (:class:`LocalPasswordGuard`) or, in a cluster, Redis (:class:`SharedPasswordThrottle`)."""

    async def check(self, charger_id: str, client: str | None) -> None: ...

    async def failed(self, charger_id: str, client: str | None) -> None: ...

    async def succeeded(self, charger_id: str, client: str | None) -> None: ...


class LocalPasswordGuard:
    """:class:`PasswordGuard` on a :class:`PasswordThrottle` of this process."""

    def __init__(self, throttle: PasswordThrottle) -> None:
        self.throttle = throttle

    @classmethod
    def off(cls) -> LocalPasswordGuard:
        return cls(PasswordThrottle.off())

    async def check(self, charger_id: str, client: str | None) -> None:
        self.throttle.check(charger_id, client)

    async def failed(self, charger_id: str, client: str | None) -> None:
        self.throttle.failed(charger_id, client)

    async def succeeded(self, charger_id: str, client: str | None) -> None:
        self.throttle.succeeded(charger_id, client)


# PasswordThrottle.failed, the same rules on Redis hashes (one per key; a client's charger ids
# in a set beside it), atomic across nodes. KEYS: charger, pair, client ("" = no client).
_FAILED = """
local now, window, lockout = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local max, client_max, charger_max = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ttl, charger_id, max_backoff = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local function counted(key)
    local h = redis.call('HMGET', key, 'since', 'last', 'failures', 'holds', 'held')
    local c = {since = tonumber(h[1]), last = tonumber(h[2]), failures = tonumber(h[3]) or 0,
               holds = tonumber(h[4]) or 0, held = tonumber(h[5]) or 0}
    if not c.since then
        c.since, c.last, c.failures = now, now, 0
    elseif now - c.since > window then
        local quiet = now - math.max(c.last, c.held) > window
        c.since, c.failures = now, 0
        redis.call('DEL', key .. ':ids')
        if quiet then c.holds = 0 end
    end
    c.last = now
    return c
end
local function hold(key, c)
    c.held = now + lockout * math.min(max_backoff, 2 ^ c.holds)
    c.holds, c.since, c.failures = c.holds + 1, now, 0
    redis.call('DEL', key .. ':ids')
end
local function save(key, c)
    redis.call('HSET', key, 'since', tostring(c.since), 'last', tostring(c.last),
               'failures', tostring(c.failures), 'holds', tostring(c.holds),
               'held', tostring(c.held))
    redis.call('PEXPIRE', key, ttl)
end
local spread = counted(KEYS[1])
spread.failures = spread.failures + 1
save(KEYS[1], spread)
local pair_max = max
if spread.failures >= charger_max then pair_max = 1 end
local pair = counted(KEYS[2])
pair.failures = pair.failures + 1
if pair.failures >= pair_max then hold(KEYS[2], pair) end
save(KEYS[2], pair)
if KEYS[3] ~= '' then
    local address = counted(KEYS[3])
    redis.call('SADD', KEYS[3] .. ':ids', charger_id)
    redis.call('PEXPIRE', KEYS[3] .. ':ids', ttl)
    if redis.call('SCARD', KEYS[3] .. ':ids') >= client_max then hold(KEYS[3], address) end
    save(KEYS[3], address)
end
return 0
"""


class SharedPasswordThrottle:
    """:class:`PasswordGuard` whose counts live in Redis, so every node of a cluster sees the
    wrong passwords of all (same rules as :class:`PasswordThrottle`, same clock: epoch
    seconds). When Redis cannot be reached, the node counts in its own ``fallback``."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        max_failures: int,
        lockout_s: float,
        window_s: float = 900.0,
        client_factor: int = 10,
        charger_factor: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:pwthrottle"
        self._max = max_failures
        self._lockout_s = lockout_s
        self._window_s = window_s
        self._client_max = max_failures * client_factor
        self._charger_max = max_failures * charger_factor
        self._clock = clock
        self._failed = redis.register_script(_FAILED)
        self._ttl_ms = int((2 * window_s + MAX_BACKOFF_FACTOR * lockout_s) * 1000) + 1000
        self.fallback = PasswordThrottle(
            max_failures=max_failures,
            lockout_s=lockout_s,
            window_s=window_s,
            client_factor=client_factor,
            charger_factor=charger_factor,
            clock=clock,
        )

    def _key(self, kind: str, value: str) -> str:
        return f"{self._prefix}:{kind}:{value}"

    def _pair(self, charger_id: str, client: str | None) -> str:
        return self._key("pair", f"{charger_id} {client or ''}")

    async def check(self, charger_id: str, client: str | None) -> None:
        if self._max <= 0:
            return
        keys = [self._pair(charger_id, client)]
        if client:
            keys.append(self._key("client", client))
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.hget(key, "held")
            helds = await pipe.execute()
        except RedisError as exc:
            LOG.warning("password throttle: Redis unreachable (%s), counting here", exc)
            self.fallback.check(charger_id, client)
            return
        now = self._clock()
        for held in helds:
            if held is not None and float(held) > now:
                raise PasswordThrottled(math.ceil(float(held) - now))

    async def failed(self, charger_id: str, client: str | None) -> None:
        if self._max <= 0:
            return
        keys = [
            self._key("charger", charger_id),
            self._pair(charger_id, client),
            self._key("client", client) if client else "",
        ]
        args: list[str | int | float] = [
            self._clock(),
            self._window_s,
            self._lockout_s,
            self._max,
            self._client_max,
            self._charger_max,
            self._ttl_ms,
            charger_id,
            MAX_BACKOFF_FACTOR,
        ]
        try:
            await self._failed(keys=keys, args=args)
        except RedisError as exc:
            LOG.warning("password throttle: Redis unreachable (%s), counting here", exc)
            self.fallback.failed(charger_id, client)

    async def succeeded(self, charger_id: str, client: str | None) -> None:
        self.fallback.succeeded(charger_id, client)
        try:
            await self._redis.delete(self._pair(charger_id, client))
        except RedisError as exc:
            LOG.warning("password throttle: Redis unreachable (%s)", exc)
