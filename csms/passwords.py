"""Charger passwords (security profiles 1 and 2): argon2id hashes, verified off the loop.

Verifying an argon2 hash costs tens of milliseconds of CPU with the parameters below (OWASP's
minimum for argon2id: 19 MiB, 2 passes). A reconnect storm of thousands of chargers would
starve the event loop if that ran inline, so verification runs in threads, at most
``parallel`` at a time, and a successful verification is remembered for ``ttl_s`` under
sha256(id, password, stored hash): a charger retrying its handshake, or replacing its own
connection, costs nothing the second time, and a password change invalidates the entry by
itself.

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
import math
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
        self._parallel = parallel or max(1, os.cpu_count() or 1)
        self._slots = asyncio.Semaphore(self._parallel)
        self._max_waiting = max_waiting
        self._pending = 0
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
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
                ok = await asyncio.to_thread(check_password, stored_hash, password)
                took = time.perf_counter() - started
                self._verify_s += (took - self._verify_s) / 16
        finally:
            self._pending -= 1
        if ok:
            self._ok[key] = self._clock() + self._ttl_s
            self._ok.move_to_end(key)
            while len(self._ok) > self._max_entries:
                self._ok.popitem(last=False)
        return ok

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
