"""Failed log-ins are throttled per email and per client address (in memory, per process).

The password check is argon2id, slow by design, but nothing stopped a client from trying a
driver's password over and over. Failures are counted within ``window_s`` under three keys,
and a key that reaches its limit is locked for ``lockout_s``: log-ins it covers get 429 with
``Retry-After`` without the password being checked (a correct one included: otherwise the
answer would tell an attacker when they guessed right).

* (email, client address): ``max_failures``, so a driver who mistypes does not lock out
  anyone else;
* email: 4 x ``max_failures`` from any addresses, against guessing spread over many. This
  lock spares a device that has signed in to the account before (it shows the device mark
  the CSMS gave it then, a cookie): an attacker can lock the account against new devices and
  against himself, never against its owner's phone;
* client address: 10 x ``max_failures`` over any emails, so one address cannot walk through
  many accounts.

A successful log-in clears its (email, client) count. Memory is bounded: the oldest entries go
first.

:class:`LoginThrottle` counts in this process; :class:`SharedLoginThrottle` keeps the same
counts in Redis, so the nodes of a cluster count each other's failures. Behind a reverse
proxy every client has the proxy's address, which the per-client budget then throttles as
one.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from csms.drivers.errors import TooManyAttempts

LOG = logging.getLogger("csms.drivers.throttle")


@dataclass(slots=True)
class _Count:
    failures: int
    since: float  # start of the counting window
    locked_until: float = 0.0


class LoginThrottle:
    """Counts failed log-ins; :meth:`check` raises :class:`TooManyAttempts` when locked out."""

    def __init__(
        self,
        *,
        max_failures: int,
        lockout_s: float,
        window_s: float = 900.0,
        email_factor: int = 4,
        client_factor: int = 10,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = {
            "pair": max_failures,
            "email": max_failures * email_factor,
            "client": max_failures * client_factor,
        }
        self._lockout_s = lockout_s
        self._window_s = window_s
        self._max_entries = max_entries
        self._clock = clock
        self._counts: OrderedDict[tuple[str, str], _Count] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._max["pair"] > 0

    def check(self, email: str, client: str | None, *, known_device: bool = False) -> None:
        """Refuses the attempt while the email or the client is locked out; a ``known_device``
        (one that signed in to this email before) is not held by the email's own lock."""
        if not self.enabled:
            return
        now = self._clock()
        for key in self._keys(email, client):
            if known_device and key[0] == "email":
                continue
            count = self._counts.get(key)
            if count is not None and count.locked_until > now:
                raise TooManyAttempts(math.ceil(count.locked_until - now))

    def failed(self, email: str, client: str | None) -> None:
        """Counts a wrong password (or unknown email); locks out at the limit."""
        if not self.enabled:
            return
        now = self._clock()
        for key in self._keys(email, client):
            count = self._counts.get(key)
            if count is None or now - count.since > self._window_s:
                count = self._counts[key] = _Count(0, now)
            self._counts.move_to_end(key)
            count.failures += 1
            if count.failures >= self._max[key[0]]:
                count.locked_until = now + self._lockout_s
                count.failures, count.since = 0, now
        while len(self._counts) > self._max_entries:
            self._counts.popitem(last=False)

    def succeeded(self, email: str, client: str | None) -> None:
        self._counts.pop(("pair", f"{_normal(email)} {client or ''}"), None)

    @staticmethod
    def _keys(email: str, client: str | None) -> list[tuple[str, str]]:
        return _keys(email, client)


def _keys(email: str, client: str | None) -> list[tuple[str, str]]:
    """The counted keys of a log-in: (email, client) pair first, then email, then client."""
    email = _normal(email)
    keys = [("pair", f"{email} {client or ''}"), ("email", email)]
    if client:
        keys.append(("client", client))
    return keys


def _normal(email: str) -> str:
    return email.strip().lower()


class LocalLogins:
    """:class:`~csms.ports.LoginGuard` on a :class:`LoginThrottle` of this process."""

    def __init__(self, throttle: LoginThrottle) -> None:
        self.throttle = throttle

    async def check(self, email: str, client: str | None, *, known_device: bool = False) -> None:
        self.throttle.check(email, client, known_device=known_device)

    async def failed(self, email: str, client: str | None) -> None:
        self.throttle.failed(email, client)

    async def succeeded(self, email: str, client: str | None) -> None:
        self.throttle.succeeded(email, client)


# LoginThrottle.failed on Redis hashes, atomic across nodes. KEYS: the keys; ARGV: now, window,
# lockout, TTL (ms), then each key's limit.
_FAILED = """
local now, window, lockout, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
                                  tonumber(ARGV[4])
for i, key in ipairs(KEYS) do
    local h = redis.call('HMGET', key, 'failures', 'since', 'locked')
    local failures, since, locked = tonumber(h[1]), tonumber(h[2]), tonumber(h[3]) or 0
    if not failures or now - since > window then
        failures, since, locked = 0, now, 0
    end
    failures = failures + 1
    if failures >= tonumber(ARGV[4 + i]) then
        locked, failures, since = now + lockout, 0, now
    end
    redis.call('HSET', key, 'failures', tostring(failures), 'since', tostring(since),
               'locked', tostring(locked))
    redis.call('PEXPIRE', key, ttl)
end
return 0
"""


class SharedLoginThrottle:
    """:class:`~csms.ports.LoginGuard` whose counts live in Redis under ``prefix``, so a
    cluster's nodes count every node's failures (the rules of :class:`LoginThrottle`, on
    epoch seconds). When Redis cannot be reached the node counts in its own ``fallback``."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        max_failures: int,
        lockout_s: float,
        window_s: float = 900.0,
        email_factor: int = 4,
        client_factor: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max = {
            "pair": max_failures,
            "email": max_failures * email_factor,
            "client": max_failures * client_factor,
        }
        self._lockout_s = lockout_s
        self._window_s = window_s
        self._clock = clock
        self._ttl_ms = int((window_s + lockout_s) * 1000) + 1000
        self._failed = redis.register_script(_FAILED)
        self.fallback = LoginThrottle(
            max_failures=max_failures,
            lockout_s=lockout_s,
            window_s=window_s,
            email_factor=email_factor,
            client_factor=client_factor,
            clock=clock,
        )

    def _keys(self, email: str, client: str | None) -> list[tuple[str, str]]:
        return [(kind, f"{self._prefix}:{kind}:{value}") for kind, value in _keys(email, client)]

    async def check(self, email: str, client: str | None, *, known_device: bool = False) -> None:
        if self._max["pair"] <= 0:
            return
        keys = [
            key for kind, key in self._keys(email, client) if not (known_device and kind == "email")
        ]
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.hget(key, "locked")
            locks = await pipe.execute()
        except RedisError as exc:
            LOG.warning("log-in throttle: Redis unreachable (%s), counting here", exc)
            self.fallback.check(email, client, known_device=known_device)
            return
        now = self._clock()
        for locked in locks:
            if locked is not None and float(locked) > now:
                raise TooManyAttempts(math.ceil(float(locked) - now))

    async def failed(self, email: str, client: str | None) -> None:
        if self._max["pair"] <= 0:
            return
        keys = self._keys(email, client)
        args: list[float | str] = [self._clock(), self._window_s, self._lockout_s, self._ttl_ms]
        args += [self._max[kind] for kind, _ in keys]
        try:
            await self._failed(keys=[key for _, key in keys], args=args)
        except RedisError as exc:
            LOG.warning("log-in throttle: Redis unreachable (%s), counting here", exc)
            self.fallback.failed(email, client)

    async def succeeded(self, email: str, client: str | None) -> None:
        self.fallback.succeeded(email, client)
        try:
            await self._redis.delete(self._keys(email, client)[0][1])
        except RedisError as exc:
            LOG.warning("log-in throttle: Redis unreachable (%s)", exc)
