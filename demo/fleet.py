"""The demo's simulated chargers: who they are, and running them in this process.

Each charger is a real :class:`charge_point.charger.Charger` (OCPP over a WebSocket to the
CSMS, its own key, durable state, camera) with its control API on a free 127.0.0.1 port.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from charge_point.charger import Charger
from charge_point.settings import StationSettings
from config.settings import Settings

STARTUP_TIMEOUT_S = 20.0
LOCATIONS = (
    "Riverside car park, level 1",
    "Riverside car park, level 2",
    "Station Road, bay 4",
    "Harbour depot, gate B",
)


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    """One simulated charger of the demo fleet."""

    id: str
    ocpp_version: str
    evses: int
    location: str
    password: str


def default_fleet(count: int, *, prefix: str = "DEMO") -> list[ChargerSpec]:
    """``count`` chargers, alternating OCPP 1.6 and 2.0.1; the first one has two EVSEs."""
    if count < 1:
        raise ValueError("the demo needs at least one charger")
    return [
        ChargerSpec(
            id=f"{prefix}-{n:02d}",
            ocpp_version="1.6" if n % 2 else "2.0.1",
            evses=2 if n == 1 else 1,
            location=LOCATIONS[(n - 1) % len(LOCATIONS)],
            password=f"demo-{n:02d}-secret",
        )
        for n in range(1, count + 1)
    ]


@dataclass(slots=True)
class RunningCharger:
    """A started charger: its spec, the object, and where its control API listens."""

    spec: ChargerSpec
    charger: Charger
    task: asyncio.Task[None]

    @property
    def control_url(self) -> str:
        port = self.charger.control_port
        return f"http://127.0.0.1:{port}" if port is not None else ""


def station_settings(
    settings: Settings,
    spec: ChargerSpec,
    *,
    csms_url: str,
    state_root: Path,
    trusted_keys_file: Path,
    time_scale: float,
) -> StationSettings:
    """The charger's settings: the project's ``cp_*`` defaults plus the demo's choices."""
    return StationSettings.from_settings(
        settings,
        charge_point_id=spec.id,
        csms_url=csms_url,
        ocpp_version=spec.ocpp_version,
        password=spec.password,
        evses=spec.evses,
        state_dir=state_root / spec.id,
        control_port=0,
        time_scale=time_scale,
        trusted_keys_file=trusted_keys_file,
        reconnect_max_s=5.0,
    )


async def start_fleet(stations: list[tuple[ChargerSpec, StationSettings]]) -> list[RunningCharger]:
    """Starts every charger as a task and waits until each control API listens."""
    running = []
    for spec, station in stations:
        charger = Charger(station)
        task = asyncio.create_task(charger.run(), name=f"charger-{spec.id}")
        running.append(RunningCharger(spec, charger, task))
    async with asyncio.timeout(STARTUP_TIMEOUT_S):
        while any(r.charger.control_port is None for r in running):
            for r in running:
                if r.task.done():
                    await r.task  # raises what stopped it
            await asyncio.sleep(0.05)
    return running


async def stop_fleet(running: list[RunningCharger]) -> None:
    for r in running:
        r.task.cancel()
    await asyncio.gather(*(r.task for r in running), return_exceptions=True)
