"""Diagnostics (1.6 ``GetDiagnostics``) and log upload (2.0.1 ``GetLog``) of the reference
charger.

The file is built from what the charger knows: its identity and firmware, the state of its
EVSEs and transactions, its configuration, the installed charging profiles, the durable queue
and the status notifications it sent lately (its event log). It is uploaded with an HTTP
``POST`` of a ``multipart/form-data`` form (field ``file``), as most chargers with an HTTP
client do, to the location the CSMS gave, retried ``retries`` times ``retryInterval`` apart.

Statuses, 1.6 DiagnosticsStatusNotification: Uploading, then Uploaded or UploadFailed; 2.0.1
LogStatusNotification (with the ``requestId``): Uploading, then Uploaded, or UploadFailure
(PermissionDenied when the server refused our credentials). A location that is not
``http(s)`` is answered without a file name (1.6) or Rejected (2.0.1): this charger speaks no
FTP. A new GetLog cancels the running upload (``AcceptedCanceled``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx

from charge_point.errors import TransferFailed
from charge_point.firmware import installed_version
from charge_point.state_view import snapshot

if TYPE_CHECKING:
    from charge_point.jobs import RemoteJobs

log = logging.getLogger(__name__)
HTTP_TIMEOUT_S = 60.0
UPLOAD_S = 1.0  # simulated time to gather the file before it is sent


def uploadable(location: str) -> bool:
    return urlparse(location).scheme in ("http", "https")


def build_file(jobs: RemoteJobs, *, log_type: str, window: dict[str, Any]) -> bytes:
    """The diagnostics / log file: one JSON document, readable by a person."""
    station = jobs.station
    document = {
        "charger": station.id,
        "log_type": log_type,
        "firmware_version": installed_version(station.store),
        "ocpp_version": station.settings.ocpp_version,
        "generated_at": datetime.fromtimestamp(station.now(), UTC).isoformat(),
        "window": window,
        "state": snapshot(station),
        "configuration": {key.name: value for key, value in station.config.items()},
        "charging_profiles": [p.to_json() for p in station.profiles],
        "events": [{"action": a, **p} for a, p in jobs.sent],
    }
    return (json.dumps(document, indent=2, default=str) + "\n").encode()


async def upload(url: str, filename: str, content: bytes) -> None:
    """POSTs the file as a form; raises :class:`TransferFailed`."""
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            files = {"file": (filename, content, "application/json")}
            response = await client.post(url, files=files)
    except httpx.HTTPError as exc:
        raise TransferFailed(f"POST {url}: {exc!r}") from exc
    if response.status_code >= 300:
        raise TransferFailed(
            f"POST {url}: HTTP {response.status_code}",
            permission=response.status_code in (401, 403),
        )


class LogUploader:
    """Runs one diagnostics / log upload at a time for a charger."""

    def __init__(self, jobs: RemoteJobs) -> None:
        self.jobs = jobs
        self.station = jobs.station
        self._running: asyncio.Task[None] | None = None

    def request(
        self,
        *,
        version: str,
        location: str,
        request_id: int | None = None,
        log_type: str = "DiagnosticsLog",
        retries: int = 0,
        retry_interval_s: float = 0.0,
        window: dict[str, Any] | None = None,
    ) -> tuple[str, str | None]:
        """Starts an upload: (``Accepted`` / ``AcceptedCanceled`` / ``Rejected``, file name)."""
        if not uploadable(location):
            log.info("%s: cannot upload to %r (only http(s))", self.station.id, location)
            return "Rejected", None
        canceled = self._running is not None and not self._running.done()
        if canceled:
            assert self._running is not None
            self._running.cancel()
        stamp = datetime.fromtimestamp(self.station.now(), UTC).strftime("%Y%m%dT%H%M%SZ")
        kind = "diagnostics" if version == "1.6" else log_type.lower()
        filename = f"{self.station.id}-{kind}-{stamp}.json"
        work = self._run(
            version=version,
            location=location,
            filename=filename,
            request_id=request_id,
            log_type=log_type,
            retries=max(0, retries),
            retry_interval_s=max(0.0, retry_interval_s),
            window=window or {},
        )
        self._running = self.jobs.start(work, "log-upload")
        return ("AcceptedCanceled" if canceled else "Accepted"), filename

    async def _run(
        self,
        *,
        version: str,
        location: str,
        filename: str,
        request_id: int | None,
        log_type: str,
        retries: int,
        retry_interval_s: float,
        window: dict[str, Any],
    ) -> None:
        v16 = version == "1.6"

        def status(value: str) -> None:
            if v16:
                self.jobs.notify("DiagnosticsStatusNotification", {"status": value})
            else:
                payload: dict[str, Any] = {"status": value}
                if request_id is not None:
                    payload["request_id"] = request_id
                self.jobs.notify("LogStatusNotification", payload)

        status("Uploading")
        await self.station.clock.sleep(UPLOAD_S)
        content = build_file(self.jobs, log_type=log_type, window=window)
        failure = await self._send(location, filename, content, retries, retry_interval_s)
        if failure is None:
            status("Uploaded")
        elif v16:
            status("UploadFailed")
        else:
            status("PermissionDenied" if failure.permission else "UploadFailure")

    async def _send(
        self, location: str, filename: str, content: bytes, retries: int, interval_s: float
    ) -> TransferFailed | None:
        if self.jobs.faults.take("log-upload"):
            return TransferFailed("upload failure on request")
        failure: TransferFailed | None = None
        for attempt in range(retries + 1):
            if attempt:
                await self.station.clock.sleep(interval_s)
            try:
                await upload(location, filename, content)
                return None
            except TransferFailed as exc:
                log.warning("%s: upload failed: %s", self.station.id, exc)
                failure = exc
        return failure
