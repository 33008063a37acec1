"""Fixtures of the charge point tests: CSMS keys, start tokens, stations and chargers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from charge_point.clock import ManualClock
from charge_point.display import Display
from charge_point.settings import StationSettings
from charge_point.station import Station
from charge_point.store import Store, load_charger_key
from qr_extension.keys import KeyRing, SigningKey, generate_key
from qr_extension.start import issue_start_token
from qr_extension.tariff import Limits, Tariff
from tests.charge_point.central import Central, serve

CP_ID = "CP-1"
FLAT = Tariff(
    id="FLAT", currency="CNY", fixed_fee=10000, energy_price=12000, time_price=3000, idle_price=6000
)


@pytest.fixture(scope="session")
def csms_key() -> SigningKey:
    return generate_key()


@pytest.fixture
def jwks_file(tmp_path: Path, csms_key: SigningKey) -> Path:
    path = tmp_path / "trusted.jwks"
    path.write_text(json.dumps(KeyRing((csms_key.public,)).to_jwks()))
    return path


TokenFactory = Callable[..., str]


@pytest.fixture
def token(csms_key: SigningKey) -> TokenFactory:
    """``token(order_id, now, evse=1, cp=CP_ID, amount=..., wh=None, s=None, key=...)``."""

    def make(
        order_id: str,
        now: float,
        *,
        evse: int | None = 1,
        cp: str = CP_ID,
        amount: int = 5000,
        wh: int | None = None,
        s: int | None = None,
        key: SigningKey | None = None,
        tariff: Tariff = FLAT,
        validity_s: int = 900,
    ) -> str:
        return issue_start_token(
            key=key or csms_key,
            charge_point_id=cp,
            order_id=order_id,
            evse_id=evse,
            tariff=tariff,
            limits=Limits(amount=amount, energy_wh=wh, duration_s=s),
            issued_at=int(now),
            validity_s=validity_s,
        )

    return make


def station_settings(tmp_path: Path, **kw: Any) -> StationSettings:
    base: dict[str, Any] = {
        "charge_point_id": CP_ID,
        "state_dir": tmp_path / "cp",
        "evses": 2,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.5,
    }
    base.update(kw)
    return StationSettings(**base)


@pytest.fixture
def make_station(tmp_path: Path, csms_key: SigningKey) -> Callable[..., Station]:
    """A station on a manual clock, trusting ``csms_key``, clock synced unless told."""

    def make(*, clock: ManualClock | None = None, synced: bool = True, **kw: Any) -> Station:
        settings = station_settings(tmp_path, **kw)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        clock = clock or ManualClock()
        station = Station(
            settings,
            store=Store.in_dir(settings.state_dir),
            clock=clock,
            key=load_charger_key(settings.state_dir),
            display=Display(settings.state_dir),
        )
        station.install_trusted_jwks(KeyRing((csms_key.public,)).to_jwks())
        if synced:
            station.set_time(clock.now())
        return station

    return make


@pytest.fixture
async def central() -> AsyncIterator[Central]:
    c = Central()
    server = await serve(c)
    try:
        yield c
    finally:
        server.close()
        await server.wait_closed()
