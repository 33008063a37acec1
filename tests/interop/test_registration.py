"""The charger while its CSMS has not accepted it, against a third-party-style central system
that answers its boots as a test decides (the ``ocpp`` library's ChargePoint, nothing of ours).

Until a BootNotification is answered Accepted the charger sends nothing but its boots (1.6
section 4.2, 2.0.1 B02/B03) and, while Pending, what the CSMS asks for; it refuses remote
starts (B02.FR.05); a TriggerMessage for a boot makes it boot at once (how a CSMS that has
just accepted it tells it so); a later boot answered Pending stops it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201

from charge_point.charger import Charger
from tests.charge_point.central import until
from tests.charge_point.conftest import CP_ID, station_settings
from tests.interop.centrals import Registering16, Registering201, Seen, serve

VERSIONS = ["1.6", "2.0.1"]


@asynccontextmanager
async def running(
    tmp_path: Path, jwks_file: Path, version: str, seen: Seen
) -> AsyncIterator[Charger]:
    """A charger against the Registering central of ``version``, once it has sent a boot."""
    server = await serve(seen, Registering16, Registering201)
    settings = station_settings(
        tmp_path, csms_url=seen.url, ocpp_version=version, trusted_keys_file=jwks_file
    )
    charger = Charger(settings)
    task = asyncio.create_task(charger.run())
    try:
        await until(lambda: seen.count("BootNotification") >= 1, what="a boot")
        yield charger
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()
        server.close()
        await server.wait_closed()


def _actions(seen: Seen) -> list[str]:
    return [action for _, action, _ in seen.calls]


def _after_boot(seen: Seen, n: int) -> list[str]:
    """The actions after the ``n``-th BootNotification (1-based), up to the next one."""
    actions = _actions(seen)
    boots = [i for i, a in enumerate(actions) if a == "BootNotification"]
    end = boots[n] if n < len(boots) else len(actions)
    return actions[boots[n - 1] + 1 : end]


async def _ask(seen: Seen, request: Any) -> Any:
    """A CALL from the central system to the charger; its answer."""
    return await seen.live[CP_ID].call(request, suppress=False)


def _trigger(version: str, what: str) -> Any:
    module = c16 if version == "1.6" else c201
    return module.TriggerMessage(requested_message=what)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_rejected_charger_sends_nothing_but_its_boots(
    tmp_path: Path, jwks_file: Path, version: str
) -> None:
    """A car plugged in, and (2.0.1) a central system that asks for a report although it
    rejected the charger: still nothing but a boot after each interval."""
    seen = Seen(registration="Rejected", boot_interval=1)
    async with running(tmp_path, jwks_file, version, seen) as charger:
        charger.station.plug(1)
        if version == "2.0.1":
            await _ask(seen, c201.GetBaseReport(request_id=3, report_base="FullInventory"))
        await until(lambda: seen.count("BootNotification") >= 3, what="two more boots")
        assert set(_actions(seen)) == {"BootNotification"}
        assert charger.link.connects == 0 and seen.connections == {CP_ID: 1}


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_pending_charger_boots_at_once_when_asked_and_refuses_remote_starts(
    tmp_path: Path, jwks_file: Path, version: str
) -> None:
    seen = Seen(registration="Pending", boot_interval=3600)
    async with running(tmp_path, jwks_file, version, seen) as charger:
        if version == "1.6":
            start: Any = c16.RemoteStartTransaction(id_tag="ORDER1", connector_id=1)
        else:
            start = c201.RequestStartTransaction(
                id_token={"id_token": "ORDER1", "type": "Central"}, remote_start_id=1, evse_id=1
            )
        assert (await _ask(seen, start)).status == "Rejected"  # B02.FR.05
        assert (await _ask(seen, _trigger(version, "StatusNotification"))).status == "Accepted"
        await until(lambda: seen.count("StatusNotification") >= 2, what="the statuses asked for")
        seen.registration = "Accepted"  # the operator accepts it: the CSMS asks for a boot
        assert (await _ask(seen, _trigger(version, "BootNotification"))).status == "Accepted"
        await until(lambda: charger.link.connects == 1, what="the accepted boot")
        assert seen.count("BootNotification") == 2  # at once, not after an hour
        if version == "2.0.1":
            assert seen.of("BootNotification")[1]["reason"] == "Triggered"
        assert _after_boot(seen, 1) == ["StatusNotification", "StatusNotification"]
        await until(lambda: seen.count("StatusNotification") >= 4, what="statuses once accepted")
        assert charger.station.sessions == {} and seen.count("BootNotification") == 2


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_charger_told_pending_by_a_later_boot_stops_until_accepted_again(
    tmp_path: Path, jwks_file: Path, version: str
) -> None:
    """Accepted, heartbeating every second; a triggered boot answered Pending stops it (a car
    plugged in meanwhile is not reported), and the next accepted boot starts it again."""
    seen = Seen(registration="Accepted", boot_interval=1)
    async with running(tmp_path, jwks_file, version, seen) as charger:
        await until(lambda: seen.count("Heartbeat") >= 1, what="a heartbeat")
        seen.registration, seen.boot_interval = "Pending", 3600
        await _ask(seen, _trigger(version, "BootNotification"))
        await until(lambda: seen.count("BootNotification") == 2, what="the triggered boot")
        charger.station.plug(1)
        await asyncio.sleep(1.5)  # more than a heartbeat interval: nothing comes
        assert _after_boot(seen, 2) == []
        seen.registration, seen.boot_interval = "Accepted", 1
        await _ask(seen, _trigger(version, "BootNotification"))
        await until(lambda: charger.link.connects == 2, what="accepted again")
        await until(lambda: seen.count("Heartbeat") >= 2, what="heartbeats again")
        assert "StatusNotification" in _after_boot(seen, 3)
        assert seen.connections == {CP_ID: 1}
