"""Starts the whole demo in one asyncio loop, runs it until told to stop, and stops it.

Order: bind the port (so ``public_base_url`` is known even with port 0), serve the CSMS,
register chargers and the demo driver through the APIs, start the chargers with the CSMS
keys installed, then report :class:`DemoInfo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from config.settings import Settings, load_settings
from demo import provision
from demo.errors import DemoError
from demo.fleet import ChargerSpec, RunningCharger, start_fleet, station_settings, stop_fleet
from demo.router import create_router

LOG = logging.getLogger("demo")
STARTUP_TIMEOUT_S = 30.0
DEMO_HEARTBEAT_S = 10  # the operator page's "last seen" of each charger is this fresh


@dataclass(frozen=True, slots=True)
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("var/demo")
    fleet: tuple[ChargerSpec, ...] = ()
    time_scale: float = 1.0
    config: Path | None = None
    log_level: str = "warning"
    log_format: str = "text"  # json: uvicorn's loggers go through ours (config.logs)
    settings_overrides: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChargerInfo:
    id: str
    ocpp_version: str
    evses: int
    location: str
    page_url: str
    control_url: str


@dataclass(frozen=True, slots=True)
class DemoInfo:
    """Everything a person or a test needs to use the running demo."""

    base_url: str
    page_url: str
    operator_url: str
    admin_api_key: str
    driver_email: str
    driver_password: str
    data_dir: str
    chargers: list[ChargerInfo]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


def csms_app(settings: Settings) -> FastAPI:
    """The CSMS app as ``qrcharge csms`` serves it (driver, order and payment APIs included)."""
    from csms.app import create_app

    return create_app(settings)


@contextlib.asynccontextmanager
async def running_demo(options: DemoOptions) -> AsyncIterator[DemoInfo]:
    """The demo, up and provisioned, for the duration of the ``async with``."""
    options.data_dir.mkdir(parents=True, exist_ok=True)
    sock = _bind(options.host, options.port)
    port = sock.getsockname()[1]
    base_url = f"http://{options.host}:{port}"
    settings = load_settings(
        options.config,
        host=options.host,
        port=port,
        data_dir=options.data_dir,
        public_base_url=base_url,
        heartbeat_interval_s=DEMO_HEARTBEAT_S,
        **options.settings_overrides,
    )
    app = csms_app(settings)
    control_urls: dict[str, str] = {}
    app.include_router(create_router(control_urls, {s.id: s.ocpp_version for s in options.fleet}))
    from csms.app import server_config

    uvicorn_logs: dict[str, Any] = {} if options.log_format == "text" else {"log_config": None}
    server = uvicorn.Server(
        server_config(settings, app, log_level=options.log_level, **uvicorn_logs)
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="demo-csms")
    fleet: list[RunningCharger] = []
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            while not server.started:
                if serving.done():
                    await serving
                    raise DemoError("the CSMS stopped while starting")
                await asyncio.sleep(0.05)
            async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
                key = settings.admin_api_key
                await provision.register_chargers(client, key, list(options.fleet))
                keys_file = await provision.trusted_keys(
                    client, options.data_dir / "trusted-keys.json"
                )
                driver = await provision.demo_driver(
                    client, key, currency=settings.default_currency
                )
            stations = [
                (
                    spec,
                    station_settings(
                        settings,
                        spec,
                        csms_url=f"ws://{options.host}:{port}/ocpp",
                        state_root=options.data_dir / "chargers",
                        trusted_keys_file=keys_file,
                        time_scale=options.time_scale,
                    ),
                )
                for spec in options.fleet
            ]
            fleet = await start_fleet(stations)
        control_urls.update({r.spec.id: r.control_url for r in fleet})
        first = options.fleet[0]
        yield DemoInfo(
            base_url=base_url,
            page_url=f"{base_url}/c/{first.id}?evse=1",
            operator_url=f"{base_url}/operator",
            admin_api_key=settings.admin_api_key,
            driver_email=driver.email,
            driver_password=driver.password,
            data_dir=str(options.data_dir.resolve()),
            chargers=[
                ChargerInfo(
                    id=r.spec.id,
                    ocpp_version=r.spec.ocpp_version,
                    evses=r.spec.evses,
                    location=r.spec.location,
                    page_url=f"{base_url}/c/{r.spec.id}?evse=1",
                    control_url=r.control_url,
                )
                for r in fleet
            ],
        )
    finally:
        await stop_fleet(fleet)
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serving
        sock.close()


async def run_until_stopped(
    options: DemoOptions, *, on_ready: Callable[[DemoInfo], None], stop: asyncio.Event
) -> None:
    async with running_demo(options) as info:
        on_ready(info)
        await stop.wait()
