"""Firmware updates of the reference charger (1.6 and 2.0.1 ``UpdateFirmware``).

What a real charger does, in simulated time on the station's clock: wait for the retrieve
date (2.0.1 says ``DownloadScheduled``), download the image from the URL over HTTP(S) (bounded
in size, written to the state directory, retried ``retries`` times ``retryInterval`` apart),
check its signature when one came (2.0.1 ``SignatureVerified``; the reference charger has no
vendor key: it accepts any signature unless a fault is armed), wait until no transaction runs,
install, and reboot: a new connection and BootNotification (2.0.1 reason ``FirmwareUpdate``)
with the new firmware version, after which ``Installed`` is sent.

Statuses in order, 1.6: Downloading, Downloaded, Installing, (reboot) Installed; 2.0.1:
[DownloadScheduled], Downloading, Downloaded, [SignatureVerified], Installing,
InstallRebooting, (reboot) Installed. Failures end the sequence with ``DownloadFailed``,
``InvalidSignature`` (2.0.1) or ``InstallationFailed``. A new request cancels the one running
(2.0.1 answers it ``AcceptedCanceled``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx

from charge_point.errors import TransferFailed
from charge_point.store import Store

if TYPE_CHECKING:
    from charge_point.jobs import RemoteJobs

log = logging.getLogger(__name__)

FIRMWARE_DIR = "firmware"
MAX_IMAGE_BYTES = 64 * 1024 * 1024
FACTORY_VERSION = "1.0.0"
VERSION_KEY = "firmware_version"
IDLE_POLL_S = 1.0  # how often an installation waiting for the sessions to end looks again
HTTP_TIMEOUT_S = 30.0
SCHEDULE_AFTER_S = 1.0  # a retrieve date less than this ahead starts the download at once


@dataclass
class Durations:
    """Simulated time (seconds of the station's clock) each step takes."""

    download_s: float = 2.0
    install_s: float = 3.0


def installed_version(store: Store) -> str:
    """The firmware version BootNotification reports."""
    return str(store.get(VERSION_KEY, FACTORY_VERSION))


def version_of(location: str) -> str:
    """The version an image is named after: its file name without the extension."""
    name = PurePosixPath(urlparse(location).path).name
    stem = name.split(".bin")[0].split(".img")[0] if name else ""
    return (stem or "unnamed")[:50]


async def download(url: str, *, limit: int = MAX_IMAGE_BYTES) -> bytes:
    """The image at ``url``, at most ``limit`` bytes; raises :class:`TransferFailed`."""
    if urlparse(url).scheme not in ("http", "https"):
        raise TransferFailed(f"cannot download from {url!r}: only http(s)")
    try:
        async with (
            httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise TransferFailed(f"GET {url}: HTTP {response.status_code}")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise TransferFailed(f"GET {url}: image larger than {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise TransferFailed(f"GET {url}: {exc!r}") from exc


class FirmwareUpdater:
    """Runs one firmware update at a time for a charger."""

    def __init__(self, jobs: RemoteJobs) -> None:
        self.jobs = jobs
        self.station = jobs.station
        self.durations = Durations()
        self._running: asyncio.Task[None] | None = None

    def request(
        self,
        *,
        version: str,
        location: str,
        retrieve_at: float,
        request_id: int | None = None,
        retries: int = 0,
        retry_interval_s: float = 0.0,
        signature: str | None = None,
    ) -> str:
        """Starts an update; ``Accepted``, or ``AcceptedCanceled`` when one was running."""
        canceled = self._running is not None and not self._running.done()
        if canceled:
            assert self._running is not None
            self._running.cancel()
        work = self._run(
            version=version,
            location=location,
            retrieve_at=retrieve_at,
            request_id=request_id,
            retries=max(0, retries),
            retry_interval_s=max(0.0, retry_interval_s),
            signature=signature,
        )
        self._running = self.jobs.start(work, "firmware")
        return "AcceptedCanceled" if canceled else "Accepted"

    async def _run(
        self,
        *,
        version: str,
        location: str,
        retrieve_at: float,
        request_id: int | None,
        retries: int,
        retry_interval_s: float,
        signature: str | None,
    ) -> None:
        v201 = version == "2.0.1"
        clock, faults = self.station.clock, self.jobs.faults

        def status(value: str, *, after_boot: bool = False) -> None:
            payload: dict[str, Any] = {"status": value}
            if v201 and request_id is not None:
                payload["request_id"] = request_id
            self.jobs.notify("FirmwareStatusNotification", payload, after_boot=after_boot)

        wait = retrieve_at - self.station.now()
        if wait > SCHEDULE_AFTER_S:  # "now" by the CSMS's clock is now, not a schedule
            if v201:
                status("DownloadScheduled")
            await clock.sleep(wait)
        status("Downloading")
        image = await self._download(location, retries, retry_interval_s)
        if image is None:
            status("DownloadFailed")
            return
        await clock.sleep(self.durations.download_s)
        await asyncio.to_thread(self._keep, image)
        status("Downloaded")
        if v201 and signature is not None:
            if faults.take("firmware-signature"):
                status("InvalidSignature")
                return
            status("SignatureVerified")
        while self.station.sessions:  # a real charger does not reboot under a running session
            await clock.sleep(IDLE_POLL_S)
        status("Installing")
        await clock.sleep(self.durations.install_s)
        if faults.take("firmware-install"):
            status("InstallationFailed")
            return
        new_version = version_of(location)
        self.station.store.put(VERSION_KEY, new_version)
        log.info("%s: firmware %s installed, rebooting", self.station.id, new_version)
        if v201:
            status("InstallRebooting")
        status("Installed", after_boot=True)
        self.jobs.reboot("FirmwareUpdate")

    async def _download(self, location: str, retries: int, interval_s: float) -> bytes | None:
        if self.jobs.faults.take("firmware-download"):
            log.warning("%s: firmware download fails on request", self.station.id)
            return None
        for attempt in range(retries + 1):
            if attempt:
                await self.station.clock.sleep(interval_s)
            try:
                return await download(location)
            except TransferFailed as exc:
                log.warning("%s: firmware download failed: %s", self.station.id, exc)
        return None

    def _keep(self, image: bytes) -> None:
        folder = self.station.settings.state_dir / FIRMWARE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "image.bin").write_bytes(image)
        (folder / "image.sha256").write_text(hashlib.sha256(image).hexdigest() + "\n")
