"""How often settlements may be uploaded: per driver and per client address.

Every upload costs a signature check and a transaction, a photo a decode on top, and a
refused one leaves evidence in the database; without a bound, one signed-in client could
send them as fast as the server answers. :class:`UploadRate` admits an upload when both the
driver's and the client address's buckets (:class:`~csms.rate_limit.RateLimiter`) have a
token, and spends one of each; otherwise :class:`UploadsTooFrequent` carries the seconds
until both have (the ``Retry-After`` of the 429). The address bucket covers photos and JSON
alike, so several accounts behind one address share it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from csms.errors import CsmsError
from csms.rate_limit import RateLimiter


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
