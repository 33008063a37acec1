"""Firmware update, diagnostics / log upload and smart charging end to end: the operator's
command through the CSMS's commands endpoint, over a real socket to the reference charger (1.6
and 2.0.1), the charger's statuses back into the CSMS's history, the file into the CSMS's own
upload endpoint, failures armed through the charger's control API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from charge_point.charger import Charger
from charge_point.control import create_app as control_app
from charge_point.firmware import Durations
from config.settings import Settings
from csms.app import create_app, server_config
from qr_extension.wire import ocpp_timestamp
from tests.charge_point.central import until
from tests.charge_point.conftest import station_settings

ADMIN = "cp-remote-admin-key"
PASSWORD = "cp-remote-password"
IMAGE = b"\x7fELF firmware image " * 500
VERSIONS = ["1.6", "2.0.1"]


@pytest.fixture
def firmware_url() -> Iterator[str]:
    """A tiny HTTP server on 127.0.0.1 that serves one firmware image."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/images/fw-2.4.1.bin":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(IMAGE)))
            self.end_headers()
            self.wfile.write(IMAGE)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/images/fw-2.4.1.bin"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[tuple[int, httpx.AsyncClient]]:
    """The project's CSMS on a socket bound first, so its public URL (where chargers upload)
    names the real port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(
        data_dir=tmp_path / "csms",
        admin_api_key=ADMIN,  # type: ignore[call-arg]
        ocpp_call_timeout_s=3,
        public_base_url=f"http://127.0.0.1:{port}",
    )
    app = create_app(settings)
    server = uvicorn.Server(server_config(settings, app, port=port, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=10,
            headers={"Authorization": f"Bearer {ADMIN}"},
        ) as http:
            yield port, http
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def running_charger(
    tmp_path: Path, port: int, http: httpx.AsyncClient, version: str
) -> AsyncIterator[tuple[Charger, httpx.AsyncClient]]:
    """A reference charger registered with and connected to the CSMS, and a client of its
    control API (in process)."""
    cp_id = f"CP-RC-{version.replace('.', '')}"
    r = await http.post(
        "/api/v1/admin/chargers", json={"id": cp_id, "password": PASSWORD, "evses": 2}
    )
    assert r.status_code == 201, r.text
    settings = station_settings(
        tmp_path,
        charge_point_id=cp_id,
        ocpp_version=version,
        csms_url=f"ws://127.0.0.1:{port}/ocpp",
        password=PASSWORD,
    )
    charger = Charger(settings)
    charger.link.remote.firmware.durations = Durations(download_s=0.05, install_s=0.05)
    task = asyncio.create_task(charger.run())
    transport = httpx.ASGITransport(app=control_app(charger))
    try:
        await until(lambda: charger.station.online, 15, "boot")
        async with httpx.AsyncClient(transport=transport, base_url="http://cp") as control:
            yield charger, control
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await charger.link.remote.close()
        charger.store.close()


async def command(http: httpx.AsyncClient, cp_id: str, action: str, payload: Any) -> Any:
    r = await http.post(f"/api/v1/admin/chargers/{cp_id}/commands/{action}", json=payload)
    assert r.status_code == 200, (action, r.text)
    return r.json()


async def history_until(
    http: httpx.AsyncClient, path: str, last: set[str], *, times: int = 1, limit_s: float = 15
) -> list[dict[str, Any]]:
    """The status history (oldest first) once statuses in ``last`` were reported ``times``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        rows = list(reversed((await http.get(path)).json()))
        seen = [r for r in rows if r["status"] in last and r["action"].endswith("Notification")]
        if len(seen) >= times:
            return rows
        if loop.time() > deadline:
            raise AssertionError(f"no {last} in {rows}")
        await asyncio.sleep(0.05)


def reported(rows: list[dict[str, Any]]) -> list[str]:
    return [row["status"] for row in rows if row["action"].endswith("StatusNotification")]


def firmware_request(version: str, url: str, *, signed: bool = True) -> dict[str, Any]:
    now = ocpp_timestamp(time.time())
    if version == "1.6":
        return {"location": url, "retrieveDate": now}
    firmware: dict[str, Any] = {"location": url, "retrieveDateTime": now}
    if signed:
        firmware["signature"] = "c2lnbmVk"
    return {"firmware": firmware}  # the CSMS adds the requestId


@pytest.mark.parametrize("version", VERSIONS)
async def test_firmware_update_downloads_installs_and_reboots(
    tmp_path: Path,
    csms: tuple[int, httpx.AsyncClient],
    firmware_url: str,
    version: str,
) -> None:
    port, http = csms
    async with running_charger(tmp_path, port, http, version) as (charger, _):
        cp_id = charger.station.id
        answer = await command(
            http, cp_id, "UpdateFirmware", firmware_request(version, firmware_url)
        )
        request_id = answer["request_id"]
        assert isinstance(request_id, int)
        if version == "2.0.1":
            assert answer["response"] == {"status": "Accepted"}
        rows = await history_until(http, f"/api/v1/admin/chargers/{cp_id}/firmware", {"Installed"})
        expected = (
            ["Downloading", "Downloaded", "Installing", "Installed"]
            if version == "1.6"
            else [
                "Downloading",
                "Downloaded",
                "SignatureVerified",
                "Installing",
                "InstallRebooting",
                "Installed",
            ]
        )
        assert reported(rows) == expected
        assert rows[0]["action"] == "UpdateFirmware" and rows[0]["status"] == "Accepted"
        # every step carries the request's id (1.6: the CSMS's own, as 1.6 has none)
        assert {row["request_id"] for row in rows} == {request_id}
        image = charger.settings.state_dir / "firmware" / "image.bin"
        assert image.read_bytes() == IMAGE
        # installed, then rebooted: a second boot, which reported the new version
        assert charger.link.connects == 2
        row = (await http.get(f"/api/v1/admin/chargers/{cp_id}")).json()
        assert row["firmware_version"] == "fw-2.4.1"


@pytest.mark.parametrize("version", VERSIONS)
async def test_firmware_failures_on_request(
    tmp_path: Path, csms: tuple[int, httpx.AsyncClient], firmware_url: str, version: str
) -> None:
    port, http = csms
    async with running_charger(tmp_path, port, http, version) as (charger, control):
        cp_id = charger.station.id
        path = f"/api/v1/admin/chargers/{cp_id}/firmware"
        assert (await control.post("/faults/firmware-download")).json() == {
            "armed": ["firmware-download"]
        }
        await command(http, cp_id, "UpdateFirmware", firmware_request(version, firmware_url))
        rows = await history_until(http, path, {"DownloadFailed"})
        assert reported(rows) == ["Downloading", "DownloadFailed"]

        assert (await control.post("/faults/firmware-install")).status_code == 200
        await command(http, cp_id, "UpdateFirmware", firmware_request(version, firmware_url))
        rows = await history_until(http, path, {"InstallationFailed"})
        second = reported(rows)[2:]
        if version == "1.6":
            assert second == ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
        else:
            assert second == [
                "Downloading",
                "Downloaded",
                "SignatureVerified",
                "Installing",
                "InstallationFailed",
            ]
        assert charger.link.connects == 1  # no reboot after a failed installation
        assert (await control.get("/faults")).json()["armed"] == []
        assert (await control.post("/faults/meltdown")).status_code == 404

        # a download that cannot work (nothing served there) fails the same way, unarmed
        await command(http, cp_id, "UpdateFirmware", firmware_request(version, firmware_url + "x"))
        rows = await history_until(http, path, {"DownloadFailed"}, times=2)
        assert reported(rows)[-2:] == ["Downloading", "DownloadFailed"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_diagnostics_upload_to_the_csms_and_failure(
    tmp_path: Path, csms: tuple[int, httpx.AsyncClient], version: str
) -> None:
    port, http = csms
    async with running_charger(tmp_path, port, http, version) as (charger, control):
        cp_id = charger.station.id
        action, payload = (
            ("GetDiagnostics", {})
            if version == "1.6"
            else ("GetLog", {"logType": "DiagnosticsLog"})
        )
        answer = await command(http, cp_id, action, payload)
        assert answer["upload_id"] is not None
        name = answer["response"]["fileName" if version == "1.6" else "filename"]
        assert name.startswith(cp_id)
        if version == "2.0.1":
            assert answer["response"]["status"] == "Accepted"
        path = f"/api/v1/admin/chargers/{cp_id}/diagnostics"
        rows = await history_until(http, path, {"Uploaded"})
        assert reported(rows) == ["Uploading", "Uploaded"]
        assert {row["request_id"] for row in rows} == {answer["request_id"]}
        assert rows[0]["detail"].endswith(f"/api/v1/uploads/{cp_id}/[redacted]")  # no token

        files = (await http.get(f"/api/v1/admin/chargers/{cp_id}/uploads")).json()
        assert [(f["id"], f["name"]) for f in files] == [(answer["upload_id"], name)]
        r = await http.get(f"/api/v1/admin/chargers/{cp_id}/uploads/{files[0]['id']}")
        assert r.status_code == 200
        document = json.loads(r.content)
        assert document["charger"] == cp_id and document["ocpp_version"] == version
        assert len(r.content) == files[0]["size"]

        assert (await control.post("/faults/log-upload")).status_code == 200
        await command(http, cp_id, action, payload)
        rows = await history_until(http, path, {"UploadFailed", "UploadFailure"})
        await asyncio.sleep(0.2)  # nothing more comes: the failed upload is not indexed
        failed = "UploadFailed" if version == "1.6" else "UploadFailure"
        assert reported(rows) == ["Uploading", "Uploaded", "Uploading", failed]
        assert len((await http.get(f"/api/v1/admin/chargers/{cp_id}/uploads")).json()) == 1


def tx_default(version: str, *, profile_id: int, amps: float, evse: int = 1) -> dict[str, Any]:
    schedule = {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": amps, "numberPhases": 1}],
    }
    profile = {
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
    }
    if version == "1.6":
        return {
            "connectorId": evse,
            "csChargingProfiles": {
                "chargingProfileId": profile_id,
                **profile,
                "chargingSchedule": schedule,
            },
        }
    return {
        "evseId": evse,
        "chargingProfile": {
            "id": profile_id,
            **profile,
            "chargingSchedule": [{"id": 1, **schedule}],
        },
    }


def tx_profile(version: str) -> dict[str, Any]:
    """A TxProfile on EVSE 1, where no transaction runs."""
    payload = tx_default(version, profile_id=99, amps=10)
    body = payload["csChargingProfiles" if version == "1.6" else "chargingProfile"]
    body["chargingProfilePurpose"] = "TxProfile"
    return payload


def composite_periods(version: str, answer: dict[str, Any]) -> list[dict[str, Any]]:
    schedule = answer["chargingSchedule"] if version == "1.6" else answer["schedule"]
    periods: list[dict[str, Any]] = schedule["chargingSchedulePeriod"]
    return periods


@pytest.mark.parametrize("version", VERSIONS)
async def test_smart_charging_profiles_and_the_composite_schedule(
    tmp_path: Path, csms: tuple[int, httpx.AsyncClient], version: str
) -> None:
    port, http = csms
    async with running_charger(tmp_path, port, http, version) as (charger, control):
        cp_id = charger.station.id
        evse_key = "connectorId" if version == "1.6" else "evseId"
        answer = await command(
            http, cp_id, "SetChargingProfile", tx_default(version, profile_id=7, amps=16)
        )
        assert answer["response"] == {"status": "Accepted"}
        # a transaction profile without a transaction is refused, and not recorded
        answer = await command(http, cp_id, "SetChargingProfile", tx_profile(version))
        assert answer["response"] == {"status": "Rejected"}

        for unit, limit in (("A", 16.0), ("W", 3680.0)):
            answer = await command(
                http,
                cp_id,
                "GetCompositeSchedule",
                {evse_key: 1, "duration": 3600, "chargingRateUnit": unit},
            )
            assert answer["response"]["status"] == "Accepted"
            periods = composite_periods(version, answer["response"])
            assert periods == [{"startPeriod": 0, "limit": limit, "numberPhases": 1}]
        # EVSE 2 has no profile: the hardware's maximum
        answer = await command(http, cp_id, "GetCompositeSchedule", {evse_key: 2, "duration": 60})
        assert composite_periods(version, answer["response"]) == [
            {"startPeriod": 0, "limit": 22000.0}
        ]
        state = (await control.get("/smart-charging")).json()
        assert state["limit_w"] == {"1": 3680.0, "2": None}

        profiles = (await http.get(f"/api/v1/admin/chargers/{cp_id}/charging-profiles")).json()
        assert [(p["profile_id"], p["evse_id"], p["cleared_at"]) for p in profiles] == [
            (7, 1, None)
        ]
        assert profiles[0]["purpose"] == "TxDefaultProfile"

        # the same slot again replaces it, at the charger and in the CSMS's record
        await command(http, cp_id, "SetChargingProfile", tx_default(version, profile_id=8, amps=10))
        clear = {"id": 8} if version == "1.6" else {"chargingProfileId": 8}
        answer = await command(http, cp_id, "ClearChargingProfile", clear)
        assert answer["response"] == {"status": "Accepted"}
        answer = await command(http, cp_id, "ClearChargingProfile", clear)
        assert answer["response"] == {"status": "Unknown"}
        assert list(charger.station.profiles) == []
        profiles = (await http.get(f"/api/v1/admin/chargers/{cp_id}/charging-profiles")).json()
        assert [(p["profile_id"], p["cleared_by"]) for p in profiles] == [
            (8, "ClearChargingProfile"),
            (7, "replaced"),
        ]
        active = await http.get(
            f"/api/v1/admin/chargers/{cp_id}/charging-profiles", params={"active": True}
        )
        assert active.json() == []
