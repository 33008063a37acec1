"""``--time-scale X``: the simulated EV draws X times the power; the charger's clock stays true.

Energy (and so cost, and the energy and cost limits) comes X times sooner. Everything that is
time (OCPP timestamps, token validity, the time floor, identification codes, heartbeats, meter
sample intervals, the duration limit ``lim.s``, idle time, screen timeouts) stays in real
seconds, so a charger at any scale can talk to any CSMS that checks times.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import charge_point.clock
from charge_point.charger import Charger
from charge_point.clock import ManualClock
from charge_point.events import Kind
from charge_point.meter import Ev, Meter
from charge_point.station import Station
from qr_extension.identify import parse_identification_url, verify_presence_code
from qr_extension.refusal import Refusal
from qr_extension.settlement import verify_settlement
from qr_extension.wire import parse_ocpp_timestamp
from tests.charge_point.central import Central, Received, until
from tests.charge_point.conftest import TokenFactory, station_settings

SCALE = 60
MakeStation = Callable[..., Station]


class FakeTime:
    """Stands in for the ``time`` module of :mod:`charge_point.clock`: wall time that moves
    only when the test says so."""

    def __init__(self, start: float) -> None:
        self.wall = start
        self.mono = 1_000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> float:
        self.wall += seconds
        self.mono += seconds
        return self.wall


def ticked(station: Station, fake: FakeTime, seconds: float, step: float = 0.1) -> None:
    """``seconds`` of real time pass, with the runner's tick every ``step``."""
    end = fake.wall + seconds
    while fake.wall < end - 1e-9:
        fake.advance(min(step, end - fake.wall))
        station.tick()


# --- the meter model ------------------------------------------------------------------------
def test_a_scaled_meter_draws_x_times_the_power_so_energy_comes_x_times_sooner() -> None:
    real, fast = Meter(max_power_w=22_000), Meter(max_power_w=22_000, power_scale=SCALE)
    real.plug(Ev.with_soc(60_000, 0.2))
    fast.plug(Ev.with_soc(60_000, 0.2))
    for _ in range(600):
        real.step(6, offering=True)  # an hour
        fast.step(0.1, offering=True)  # a minute
    assert real.register_wh > 20_000
    assert abs(fast.register_wh - real.register_wh) <= 1
    assert real.power_w == pytest.approx(22_000)
    assert fast.power_w == pytest.approx(22_000 * SCALE)  # energy / time stays consistent
    assert fast.step(1, offering=True, max_wh=50) == 50  # a limit is still never overshot
    with pytest.raises(ValueError):
        Meter(max_power_w=22_000, power_scale=0)


# --- the station: what stays in real time ---------------------------------------------------
def test_at_time_scale_60_limits_by_energy_come_sooner_while_time_stays_real(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock, time_scale=SCALE, meter_interval_s=60)
    station.plug(1, capacity_wh=200_000, soc=0.1)
    started = clock.now()
    # lim.s is wall-clock time; cost keeps running with the scaled energy, so allow plenty
    assert not isinstance(station.scan(token("ORD60", started, s=600, amount=1_000_000)), Refusal)
    for _ in range(59):
        clock.advance(1)
        station.tick()
    session = station.sessions[1]
    assert session.energy_wh > 15_000  # an hour's worth of 22 kW in a minute
    rows = [m for m in station.store.queue_items() if m.kind == Kind.UPDATED]
    assert not rows  # MeterValueSampleInterval is 60 real seconds, not 1
    clock.advance(1)
    station.tick()
    (sample,) = [m for m in station.store.queue_items() if m.kind == Kind.UPDATED]
    assert sample.payload["timestamp"] == pytest.approx(started + 60)
    assert session.limit is None  # the duration limit counts real seconds: 60 of 600
    for _ in range(540):
        clock.advance(1)
        station.tick()
    assert session.limit is not None and session.limit.value == "TimeLimitReached"
    assert session.booked_until - session.started_at == pytest.approx(600)
    station.unplug(1)
    rows = [m for m in station.store.queue_items() if m.kind == Kind.SETTLEMENT]
    s = verify_settlement(rows[-1].payload["token"], key=station.key.public, audience="qrcharge")
    assert not isinstance(s, Refusal)
    assert s.stopped_at - s.started_at == 600 and s.started_at == int(started)
    assert station.display.settlement_until == pytest.approx(clock.now() + 600)  # real 600 s


# --- the default clock of a charger run with --time-scale -------------------------------------
@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime(time.time())
    monkeypatch.setattr(charge_point.clock, "time", fake)
    return fake


def test_a_start_qr_issued_now_is_accepted_after_minutes_at_time_scale_60(
    tmp_path: Path, jwks_file: Path, token: TokenFactory, fake_time: FakeTime
) -> None:
    """The clock a ``--time-scale 60`` charger gets from the command line stays true: after
    five real minutes its clock says five minutes later (not five hours), so a start QR the
    CSMS issues now is valid, and its identification code is the code of now."""
    settings = station_settings(tmp_path, trusted_keys_file=jwks_file, time_scale=SCALE)
    charger = Charger(settings)
    station = charger.station
    try:
        station.set_time(fake_time.time())  # the CSMS's time at boot
        station.plug(1)
        ticked(station, fake_time, 300, step=1)
        result = station.scan(token("ORDNOW", fake_time.time()))
        assert not isinstance(result, Refusal), result
        assert station.now() == pytest.approx(fake_time.time())
        (started,) = [m for m in station.store.queue_items() if m.kind == Kind.STARTED]
        assert started.payload["timestamp"] == pytest.approx(fake_time.time())
        ticked(station, fake_time, 2)
        assert station.sessions[1].energy_wh > 500  # 2 s at 60 times 22 kW (after the ramp)
        ident = parse_identification_url(station.display.qr_text or "")
        secret = bytes.fromhex(station.store.get("identify_secret"))
        assert ident.code is not None
        assert verify_presence_code(secret, ident.code, int(fake_time.time()), step_s=30, digits=6)
    finally:
        charger.store.close()


# --- end to end: offline starts reach a CSMS with their true time ---------------------------
def first(central: Central, action: str, where: Callable[[dict[str, Any]], bool]) -> Received:
    return next(m for m in central.messages if m.action == action and where(m.payload))


def arrived(central: Central, action: str, where: Callable[[dict[str, Any]], bool]) -> bool:
    return any(m.action == action and where(m.payload) for m in central.messages)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_an_offline_start_at_time_scale_60_reaches_the_csms_with_its_true_time(
    tmp_path: Path, central: Central, jwks_file: Path, token: TokenFactory, version: str
) -> None:
    settings = station_settings(
        tmp_path,
        csms_url=central.url,
        ocpp_version=version,
        trusted_keys_file=jwks_file,
        time_scale=SCALE,
    )
    charger = Charger(settings)  # the clock `qrcharge cp --time-scale 60` runs on
    station = charger.station
    task = asyncio.create_task(charger.run())
    try:
        await until(lambda: arrived(central, "DataTransfer", _synced), what="boot and Synced")
        charger.link.set_up(False)
        await until(lambda: not station.online, what="link down")
        station.plug(1, capacity_wh=60_000, soc=0.3)
        before = time.time()
        result = station.scan(token("ORDOFF60", time.time(), amount=1_000_000))
        after = time.time()
        assert not isinstance(result, Refusal), result
        await asyncio.sleep(1.5)  # offline for a real while, charging at 60 times the power
        assert station.sessions[1].energy_wh > 200
        charger.link.set_up(True)
        if version == "1.6":
            await until(lambda: arrived(central, "StartTransaction", _any), what="start")
            start = first(central, "StartTransaction", _any)
        else:
            await until(lambda: arrived(central, "TransactionEvent", _started), what="start")
            start = first(central, "TransactionEvent", _started)
            assert start.payload["offline"] is True
        stamped = parse_ocpp_timestamp(start.payload["timestamp"]).timestamp()
        assert stamped <= start.at  # never in the future of its delivery ...
        assert start.at - stamped >= 1.4  # ... which came after the real offline delay
        # the true moment of the start (the clock is set from the CSMS's, a message's delay behind)
        assert before - 0.5 <= stamped <= after + 0.5
        assert int(station.sessions[1].started_at) == int(stamped)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()


async def test_heartbeats_keep_real_seconds_at_time_scale_60(
    tmp_path: Path, central: Central, jwks_file: Path
) -> None:
    central.heartbeat_interval = 1
    settings = station_settings(
        tmp_path, csms_url=central.url, trusted_keys_file=jwks_file, time_scale=SCALE
    )
    charger = Charger(settings)
    task = asyncio.create_task(charger.run())
    try:
        await until(lambda: arrived(central, "Heartbeat", _any), what="a heartbeat")
        boot = first(central, "BootNotification", _any)
        beat = first(central, "Heartbeat", _any)
        assert beat.at - boot.at >= 0.9  # one real second, not 1/60 s
        assert len(central.of("Heartbeat")) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()


def _any(payload: dict[str, Any]) -> bool:
    return True


def _synced(payload: dict[str, Any]) -> bool:
    return bool(payload.get("message_id") == "Synced")


def _started(payload: dict[str, Any]) -> bool:
    return bool(payload.get("event_type") == "Started")


def test_a_time_scale_must_be_positive(tmp_path: Path) -> None:
    for bad in (0, -60):
        with pytest.raises(ValueError, match="--time-scale"):
            station_settings(tmp_path, time_scale=bad)
