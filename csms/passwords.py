"""Charger passwords (security profiles 1 and 2): argon2id hashes, verified off the loop.

Verifying an argon2 hash costs tens of milliseconds of CPU with the parameters below (OWASP's
minimum for argon2id: 19 MiB, 2 passes). A reconnect storm of thousands of chargers would
starve the event loop if that ran inline, so verification runs in threads, at most
``parallel`` at a time, and a successful verification is remembered for ``ttl_s`` under
sha256(id, password, stored hash): a charger retrying its handshake, or replacing its own
connection, costs nothing the second time, and a password change invalidates the entry by
itself.

In a cluster (``redis_url``) a success is also remembered in Redis (:class:`SharedVerifications`)
under the charger id, as an HMAC-SHA256 of (id, password, stored hash) keyed by a secret
derived from the key directory's ``driver-token.secret``, which every node shares: after every
process restarted, a reconnect storm finds its chargers' checks there and runs no argon2 at all.
Redis holds nothing a password can be read or tried from without that secret, and an entry
matches only while the charger's stored hash is the one it was made with, so a new password
(read from the database at every handshake, on every node) invalidates it everywhere at once.

The queue in front of the threads is bounded too (``max_waiting``): beyond it
:class:`VerifierOverloaded` is raised at once and the endpoint answers 503 with
``Retry-After``, so a storm is spread over time instead of piling up handshakes that time out
on the client while the server still pays for them. The ``Retry-After`` is an appointment:
each refused charger is given the next free slot at the measured verification speed (with
a little headroom), so a storm of N chargers comes back spread over the time N
verifications take, instead of at random times of which many find the queue full again. A
charger that comes back at its appointment is let in even when the queue is full (appointments
are spaced at the speed the queue drains, so that stays bounded): it is refused once at most.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from csms import heap
from csms.errors import ChargerAuthError

LOG = logging.getLogger("csms.passwords")
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (PHC string, salt included)."""
    return _HASHER.hash(password)


def acceptable_hash(stored_hash: str) -> str | None:
    """None when ``stored_hash`` is an argon2id PHC string at least as strong as ours (what
    an import of hashes made elsewhere may bring in), else why not."""
    try:
        params = extract_parameters(stored_hash)
    except (InvalidHashError, ValueError):
        return "not an argon2 PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash)"
    ours = _HASHER
    if params.type is not Type.ID:
        return "must be argon2id"
    if params.memory_cost < ours.memory_cost or params.time_cost < ours.time_cost:
        return f"needs m >= {ours.memory_cost} and t >= {ours.time_cost}"
    if params.salt_len < 8 or params.hash_len < 16:
        return "needs a salt of 8 bytes and a hash of 16 bytes at least"
    return None


def check_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (blocking, CPU-heavy)."""
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


RETRY_MIN_S = 3  # the earliest appointment
RETRY_MAX_S = 300  # the latest: a charger's own back-off takes over beyond it
# Slots are spaced a little wider than the measured speed: a booked charger gets in even when
# unbooked ones filled the queue, so the headroom only absorbs error in the measurement (more
# leaves verification capacity unused once a storm's ramp is over)
SLOT_HEADROOM = 1.1


class VerifierOverloaded(ChargerAuthError):
    """Too many verifications are already waiting; the charger should come back after
    ``retry_after_s`` seconds (its appointment)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


SHARED_TTL_S = 7 * 86_400  # bounds what Redis keeps for chargers that never come back
_CACHE_LABEL = b"qrcharge charger-password verifications v1"


class SharedVerifications:
    """Successful password checks shared by the nodes of a cluster through Redis.

    One key per charger, ``{prefix}:chargerpw:{id}``, holding
    HMAC-SHA256(secret, id, password, stored hash). ``secret`` is derived from a secret every
    node holds (:func:`cache_secret`), never stored in Redis. A Redis error is a miss (the
    caller runs argon2): the cache can make a check cheaper, never make one pass.
    """

    def __init__(self, redis: Redis, *, prefix: str, secret: bytes, ttl_s: int = SHARED_TTL_S):
        self._redis = redis
        self._prefix = prefix
        self._secret = secret
        self._ttl_s = ttl_s
        self.hits = 0

    def _key(self, charger_id: str) -> str:
        return f"{self._prefix}:chargerpw:{charger_id}"

    def digest(self, charger_id: str, password: str, stored_hash: str) -> bytes:
        material = "\x00".join((charger_id, password, stored_hash)).encode()
        return hmac.new(self._secret, material, hashlib.sha256).digest()

    async def seen(self, charger_id: str, digest: bytes) -> bool:
        """Whether a node verified exactly this (password, stored hash) for the charger."""
        try:
            stored = await self._redis.get(self._key(charger_id))
        except RedisError as exc:
            LOG.debug("shared password cache unavailable: %s", exc)
            return False
        if isinstance(stored, bytes) and hmac.compare_digest(stored, digest):
            self.hits += 1
            return True
        return False

    async def remember(self, charger_id: str, digest: bytes) -> None:
        try:
            await self._redis.set(self._key(charger_id), digest, ex=self._ttl_s)
        except RedisError as exc:
            LOG.debug("shared password cache unavailable: %s", exc)


def cache_secret(node_secret: bytes) -> bytes:
    """The shared cache's HMAC key, derived from a secret every node holds (a key of its own,
    so that the cache's digests and what else ``node_secret`` signs never meet)."""
    return hmac.new(node_secret, _CACHE_LABEL, hashlib.sha256).digest()


class PasswordVerifier:
    """Bounded-concurrency verification with a short-lived cache of successes (and, in a
    cluster, the nodes' shared one).

    The checks run in a pool of its own with ``parallel`` long-lived threads (not the loop's
    default executor, whose threads serve other work too), so at most ``parallel`` malloc
    arenas ever hold argon2's memory, and when the last waiting check of a burst is done that
    memory is handed back to the system (``malloc_trim``): an idle CSMS does not carry
    ``threads x 19 MiB`` after a reconnect storm, and a storm costs ``parallel x 19 MiB``."""

    def __init__(
        self,
        *,
        shared: SharedVerifications | None = None,
        parallel: int | None = None,
        ttl_s: float = 600.0,
        max_entries: int = 100_000,
        max_waiting: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._parallel = parallel or max(1, os.cpu_count() or 1)
        self._slots = asyncio.Semaphore(self._parallel)
        self._pool = ThreadPoolExecutor(self._parallel, thread_name_prefix="argon2")
        self._max_waiting = max_waiting
        self._pending = 0
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._shared = shared
        self._ok: OrderedDict[bytes, float] = OrderedDict()
        self._verify_s = 0.02  # moving average of one verification's wall time
        self._next_slot = 0.0  # clock time of the next free appointment
        self._booked: dict[str, float] = {}  # charger id -> its appointment
        self.verifications = 0  # how many argon2 verifications ran (for tests and benchmarks)
        self.overloads = 0  # how many were refused because the queue was full

    @staticmethod
    def _key(charger_id: str, password: str, stored_hash: str) -> bytes:
        material = "\x00".join((charger_id, password, stored_hash)).encode()
        return hashlib.sha256(material).digest()

    async def verify(self, charger_id: str, password: str, stored_hash: str) -> bool:
        key = self._key(charger_id, password, stored_hash)
        now = self._clock()
        expires = self._ok.get(key)
        if expires is not None and expires > now:
            self._ok.move_to_end(key)
            return True
        digest = b""
        if self._shared is not None:
            digest = self._shared.digest(charger_id, password, stored_hash)
            if await self._shared.seen(charger_id, digest):
                self._remember(key)
                return True
        booked = self._booked.pop(charger_id, None)
        on_time = booked is not None and now >= booked - 1  # Retry-After is whole seconds
        if self._pending >= self._max_waiting and not on_time:
            self.overloads += 1
            raise VerifierOverloaded(
                f"{self._pending} password checks already waiting",
                self._appointment(charger_id, now),
            )
        self._pending += 1
        try:
            async with self._slots:
                self.verifications += 1
                started = time.perf_counter()
                loop = asyncio.get_running_loop()
                ok = await loop.run_in_executor(self._pool, check_password, stored_hash, password)
                took = time.perf_counter() - started
                self._verify_s += (took - self._verify_s) / 16
        finally:
            self._pending -= 1
        if self._pending == 0:  # the burst is over: argon2's blocks go back to the system,
            self._pool.submit(heap.trim)  # in the pool's thread, while this handshake goes on
        if ok:
            self._remember(key)
            if self._shared is not None:
                await self._shared.remember(charger_id, digest)
        return ok

    def close(self) -> None:
        """Stops the verification threads (running checks finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _remember(self, key: bytes) -> None:
        self._ok[key] = self._clock() + self._ttl_s
        self._ok.move_to_end(key)
        while len(self._ok) > self._max_entries:
            self._ok.popitem(last=False)

    def _appointment(self, charger_id: str, now: float) -> int:
        """Seconds until the next free slot, booked for ``charger_id``: slots follow one
        another at the measured speed (``parallel`` verifications of ``_verify_s`` each), with
        headroom."""
        slot = max(self._next_slot, now + RETRY_MIN_S)
        self._next_slot = slot + SLOT_HEADROOM * self._verify_s / self._parallel
        self._booked[charger_id] = slot
        if len(self._booked) > self._max_entries:  # bounded: the oldest booking goes
            del self._booked[next(iter(self._booked))]
        return min(RETRY_MAX_S, math.ceil(slot - now))
