"""Charger passwords (security profiles 1 and 2): argon2id hashes, verified off the loop.

Verifying an argon2 hash costs ~17 ms of CPU with the parameters below (OWASP's minimum for
argon2id: 19 MiB, 2 passes). A reconnect storm of thousands of chargers would starve the event
loop if that ran inline, so verification runs in threads, at most ``parallel`` at a time, and
a successful verification is remembered for ``ttl_s`` under sha256(id, password, stored hash):
a charger retrying its handshake, or replacing its own connection, costs nothing the second
time, and a password change invalidates the entry by itself.

The queue in front of the threads is bounded too (``max_waiting``): beyond it
:class:`VerifierOverloaded` is raised at once and the endpoint answers 503 with
``Retry-After``, so a storm is spread over time by the chargers' own back-off instead of piling
up handshakes that time out on the client while the server still pays for them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from csms.errors import ChargerAuthError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (PHC string, salt included)."""
    return _HASHER.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (blocking, CPU-heavy)."""
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class VerifierOverloaded(ChargerAuthError):
    """Too many verifications are already waiting; the charger should retry later."""


class PasswordVerifier:
    """Bounded-concurrency verification with a short-lived cache of successes."""

    def __init__(
        self,
        *,
        parallel: int | None = None,
        ttl_s: float = 600.0,
        max_entries: int = 100_000,
        max_waiting: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots = asyncio.Semaphore(parallel or max(1, os.cpu_count() or 1))
        self._max_waiting = max_waiting
        self._pending = 0
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._ok: OrderedDict[bytes, float] = OrderedDict()
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
        if self._pending >= self._max_waiting:
            self.overloads += 1
            raise VerifierOverloaded(f"{self._pending} password checks already waiting")
        self._pending += 1
        try:
            async with self._slots:
                self.verifications += 1
                ok = await asyncio.to_thread(check_password, stored_hash, password)
        finally:
            self._pending -= 1
        if ok:
            self._ok[key] = self._clock() + self._ttl_s
            self._ok.move_to_end(key)
            while len(self._ok) > self._max_entries:
                self._ok.popitem(last=False)
        return ok
