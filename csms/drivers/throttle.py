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

Per process: several CSMS processes each keep their own counts (a shared store would be the
next step); behind a reverse proxy every client has the proxy's address, which the per-client
budget then throttles as one.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from csms.drivers.errors import TooManyAttempts


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
        email = _normal(email)
        keys = [("pair", f"{email} {client or ''}"), ("email", email)]
        if client:
            keys.append(("client", client))
        return keys


def _normal(email: str) -> str:
    return email.strip().lower()
