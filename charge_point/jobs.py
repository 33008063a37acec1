"""Long-running work the CSMS asks for (a firmware update, a log upload), owned in one place.

A command handler answers at once and must not await a CALL (the connection would wait for
itself), so the work runs as a task of :class:`RemoteJobs`, which keeps a reference to each
(nothing is fired and forgotten; a failure is logged with its traceback). What the work has to
tell the CSMS (FirmwareStatusNotification, DiagnosticsStatusNotification, LogStatusNotification)
goes into an outbox the link drains while online, in order; a status due after the reboot
that ends a firmware update waits until the next boot is accepted. Failures on request come
from :class:`Faults`, armed through the control API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from charge_point.diagnostics import LogUploader
from charge_point.firmware import FirmwareUpdater
from charge_point.station import Station

log = logging.getLogger(__name__)

FAULTS = {
    "firmware-download": "the next firmware download fails (DownloadFailed)",
    "firmware-signature": "the next firmware signature check fails (2.0.1 InvalidSignature)",
    "firmware-install": "the next firmware installation fails (InstallationFailed)",
    "log-upload": "the next diagnostics / log upload fails (UploadFailed / UploadFailure)",
}
Notice = tuple[str, dict[str, Any]]  # (action, snake_case payload of the library's call)


class Faults:
    """One-shot failures on request: armed by name, used up by the next job that checks."""

    def __init__(self) -> None:
        self._armed: set[str] = set()

    def arm(self, name: str) -> None:
        if name not in FAULTS:
            raise KeyError(name)
        self._armed.add(name)

    def disarm(self, name: str) -> None:
        self._armed.discard(name)

    def take(self, name: str) -> bool:
        """Whether ``name`` was armed (and now is not)."""
        if name in self._armed:
            self._armed.discard(name)
            return True
        return False

    @property
    def armed(self) -> list[str]:
        return sorted(self._armed)


class RemoteJobs:
    """The firmware updater and log uploader of one charger, their tasks and their outbox."""

    def __init__(
        self,
        station: Station,
        *,
        reboot: Callable[[str], None],
        wake: Callable[[], None],
    ) -> None:
        self.station = station
        self.reboot = reboot  # drops the connection and boots again with this reason
        self._wake = wake
        self.faults = Faults()
        self.outbox: list[Notice] = []
        self.after_boot: list[Notice] = []  # sent once the next boot is accepted
        self.sent: list[Notice] = []  # every notice handed to the link, for diagnostics
        self._tasks: set[asyncio.Task[None]] = set()
        self.firmware = FirmwareUpdater(self)
        self.logs = LogUploader(self)

    def notify(self, action: str, payload: dict[str, Any], *, after_boot: bool = False) -> None:
        """Queues a status notification for the CSMS."""
        log.info("%s: %s %s", self.station.id, action, payload.get("status"))
        (self.after_boot if after_boot else self.outbox).append((action, payload))
        self._wake()

    def booted(self) -> None:
        """The next boot was accepted: what waited for it may go."""
        self.outbox.extend(self.after_boot)
        self.after_boot.clear()
        self._wake()

    def next_notice(self) -> Notice | None:
        """The next notice to send (it stays first until :meth:`delivered`), or None."""
        return self.outbox[0] if self.outbox else None

    def delivered(self) -> None:
        """The first notice was sent (or the CSMS refused it: it is not sent again)."""
        self.sent.append(self.outbox.pop(0))
        del self.sent[:-200]

    def start(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Runs ``work`` as an owned task."""
        task = asyncio.get_running_loop().create_task(work, name=f"{self.station.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: %s failed", self.station.id, task.get_name(), exc_info=task.exception())

    async def close(self) -> None:
        """Cancels every job (the charger is shutting down)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
