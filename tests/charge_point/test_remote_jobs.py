"""The firmware and log jobs of the reference charger without a CSMS: a scheduled download, an
update that waits for the running session before it installs, a second request that cancels
the first, statuses that wait for the reboot, a location the charger cannot upload to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from charge_point.clock import ManualClock
from charge_point.jobs import RemoteJobs
from charge_point.station import Station
from tests.charge_point.central import until
from tests.charge_point.test_remote_control import firmware_url  # noqa: F401 (fixture)

StationFactory = Callable[..., Station]


def jobs_of(station: Station) -> tuple[RemoteJobs, list[str]]:
    reboots: list[str] = []
    return RemoteJobs(station, reboot=reboots.append, wake=lambda: None), reboots


def statuses(jobs: RemoteJobs) -> list[str]:
    return [payload["status"] for _, payload in jobs.outbox]


async def test_a_scheduled_update_waits_for_the_session_then_reboots(
    make_station: StationFactory,
    firmware_url: str,  # noqa: F811
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    station.plug(1)
    assert station.remote_start("TAG", 1, None)
    jobs, reboots = jobs_of(station)
    answer = jobs.firmware.request(
        version="2.0.1",
        location=firmware_url,
        retrieve_at=station.now() + 3600,
        request_id=3,
        signature="c2ln",
    )
    assert answer == "Accepted"
    await until(lambda: statuses(jobs)[-1:] == ["SignatureVerified"], 10, "download")
    await asyncio.sleep(0.05)
    assert statuses(jobs) == ["DownloadScheduled", "Downloading", "Downloaded", "SignatureVerified"]
    assert not reboots  # a session runs: no installation under it
    assert station.press_stop(1)
    await until(lambda: reboots == ["FirmwareUpdate"], 10, "reboot")
    assert statuses(jobs)[-2:] == ["Installing", "InstallRebooting"]
    assert all(payload["request_id"] == 3 for _, payload in jobs.outbox)
    assert [p["status"] for _, p in jobs.after_boot] == ["Installed"]
    jobs.booted()
    assert statuses(jobs)[-1] == "Installed" and jobs.after_boot == []
    await jobs.close()


async def test_a_new_update_cancels_the_running_one(
    make_station: StationFactory,
    firmware_url: str,  # noqa: F811
) -> None:
    station = make_station(clock=ManualClock())
    station.plug(1)
    assert station.remote_start("TAG", 1, None)  # keeps the first update from installing
    jobs, _ = jobs_of(station)
    first = jobs.firmware.request(version="2.0.1", location=firmware_url, retrieve_at=0.0)
    assert first == "Accepted"
    await until(lambda: "Downloaded" in statuses(jobs), 10, "first download")
    second = jobs.firmware.request(version="2.0.1", location=firmware_url, retrieve_at=0.0)
    assert second == "AcceptedCanceled"
    await jobs.close()


async def test_a_log_location_the_charger_cannot_reach(make_station: StationFactory) -> None:
    station = make_station(clock=ManualClock())
    jobs, _ = jobs_of(station)
    status, name = jobs.logs.request(version="2.0.1", location="ftp://logs.example.org/")
    assert (status, name) == ("Rejected", None)
    # nothing listens on port 9: the upload fails after its retries, with the failure status
    status, name = jobs.logs.request(
        version="1.6", location="http://127.0.0.1:9/in", retries=1, retry_interval_s=1
    )
    assert status == "Accepted" and name is not None and name.endswith(".json")
    await until(lambda: statuses(jobs)[-1:] == ["UploadFailed"], 10, "failure")
    assert statuses(jobs) == ["Uploading", "UploadFailed"]
    assert jobs.outbox[0][0] == "DiagnosticsStatusNotification"
    await jobs.close()
