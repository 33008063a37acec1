"""Smart charging in the reference charger: the simulated power obeys the active profile (the
energy delivered over simulated time is the limit's), stack levels and purposes, the station
maximum shared between EVSEs, transaction profiles only during a transaction, profiles kept
across a restart, and the composite schedule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from charge_point.clock import ManualClock
from charge_point.protocol import commands
from charge_point.protocol.commands import CommandContext
from charge_point.smart_charging import ChargingProfiles, Period
from charge_point.station import Station
from qr_extension.wire import parse_ocpp_timestamp

StationFactory = Callable[..., Station]


def context(station: Station) -> CommandContext:
    return CommandContext(station, lambda: None, lambda *_: False, lambda *_: None)


def profile(
    profile_id: int,
    purpose: str,
    periods: list[tuple[int, float, int | None]],
    *,
    unit: str = "A",
    stack: int = 0,
    kind: str = "Relative",
    **extra: Any,
) -> dict[str, Any]:
    """A 2.0.1 chargingProfile as the adapter gets it (snake_case)."""
    schedule: dict[str, Any] = {
        "id": 1,
        "charging_rate_unit": unit,
        "charging_schedule_period": [
            {"start_period": s, "limit": limit}
            | ({} if phases is None else {"number_phases": phases})
            for s, limit, phases in periods
        ],
    }
    for key in ("duration", "start_schedule"):
        if key in extra:
            schedule[key] = extra.pop(key)
    return {
        "id": profile_id,
        "stack_level": stack,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": kind,
        "charging_schedule": [schedule],
        **extra,
    }


def run(station: Station, clock: ManualClock, seconds: int, step: int = 60) -> None:
    for _ in range(seconds // step):
        clock.advance(step)
        station.tick()


def charging(
    make_station: StationFactory, clock: ManualClock, evses: tuple[int, ...] = (1,)
) -> Station:
    station = make_station(clock=clock)
    for evse_id in evses:
        station.plug(evse_id, capacity_wh=200_000, soc=0.1)
        assert station.remote_start(f"TAG{evse_id}", evse_id, None)
    return station


def test_the_power_obeys_a_transaction_profile_over_time(make_station: StationFactory) -> None:
    clock = ManualClock()
    station = charging(make_station, clock)
    ctx = context(station)
    # 16 A on one phase for half an hour, then 10 A on three phases
    tx = profile(5, "TxProfile", [(0, 16, 1), (1800, 10, 3)])
    assert commands.set_charging_profile(ctx, 1, tx, version="2.0.1") == "Accepted"
    run(station, clock, 1800)
    assert abs(station.meters[1].power_w - 3680) < 1e-6
    first = station.sessions[1].energy_wh
    assert abs(first - 3680 * 0.5) <= 1
    run(station, clock, 1800)
    assert abs(station.meters[1].power_w - 6900) < 1e-6
    assert abs(station.sessions[1].energy_wh - first - 6900 * 0.5) <= 1
    # the profile ends with its transaction; the next one runs at the hardware's power
    assert station.press_stop(1)
    assert list(station.profiles) == []


def test_a_transaction_profile_needs_a_transaction(make_station: StationFactory) -> None:
    station = make_station(clock=ManualClock())
    ctx = context(station)
    tx = profile(5, "TxProfile", [(0, 16, 1)])
    assert commands.set_charging_profile(ctx, 1, tx, version="2.0.1") == "Rejected"
    assert commands.set_charging_profile(ctx, 0, tx, version="2.0.1") == "Rejected"
    # naming another transaction is refused too
    station.plug(1)
    assert station.remote_start("TAG", 1, None)
    other = profile(5, "TxProfile", [(0, 16, 1)], transaction_id="not-this-one")
    assert commands.set_charging_profile(ctx, 1, other, version="2.0.1") == "Rejected"
    own = profile(5, "TxProfile", [(0, 16, 1)], transaction_id=station.sessions[1].local_id)
    assert commands.set_charging_profile(ctx, 1, own, version="2.0.1") == "Accepted"
    # the station maximum lives on EVSE 0 only; a schedule must start at 0
    station_max = profile(6, "ChargingStationMaxProfile", [(0, 32, 3)], kind="Absolute")
    assert commands.set_charging_profile(ctx, 1, station_max, version="2.0.1") == "Rejected"
    late = profile(7, "TxDefaultProfile", [(60, 16, 1)])
    assert commands.set_charging_profile(ctx, 1, late, version="2.0.1") == "Rejected"
    assert commands.set_charging_profile(ctx, 9, late, version="2.0.1") == "Rejected"


def test_stack_levels_defaults_and_the_station_maximum(make_station: StationFactory) -> None:
    clock = ManualClock()
    station = charging(make_station, clock, evses=(1, 2))
    ctx = context(station)
    default_all = profile(1, "TxDefaultProfile", [(0, 10_000, None)], unit="W")
    assert commands.set_charging_profile(ctx, 0, default_all, version="2.0.1") == "Accepted"
    default_two = profile(2, "TxDefaultProfile", [(0, 4_000, None)], unit="W", stack=1)
    assert commands.set_charging_profile(ctx, 2, default_two, version="2.0.1") == "Accepted"
    run(station, clock, 600)
    # EVSE 2's own default wins over the station's; EVSE 1 takes the station's
    assert [round(station.meters[i].power_w) for i in (1, 2)] == [10_000, 4_000]
    # a station maximum of 12 kW is shared by the two EVSEs that charge
    cap = profile(3, "ChargingStationMaxProfile", [(0, 12_000, None)], unit="W", kind="Absolute")
    assert commands.set_charging_profile(ctx, 0, cap, version="2.0.1") == "Accepted"
    before = [station.sessions[i].energy_wh for i in (1, 2)]
    run(station, clock, 3600)
    assert [round(station.meters[i].power_w) for i in (1, 2)] == [6_000, 4_000]
    delivered = [station.sessions[i].energy_wh - before[i - 1] for i in (1, 2)]
    assert abs(delivered[0] - 6_000) <= 1 and abs(delivered[1] - 4_000) <= 1
    # the same EVSE, purpose and stack level replaces; clearing by criteria
    again = profile(9, "TxDefaultProfile", [(0, 2_000, None)], unit="W", stack=1)
    assert commands.set_charging_profile(ctx, 2, again, version="2.0.1") == "Accepted"
    assert sorted(p.id for p in station.profiles) == [1, 3, 9]
    cleared = commands.clear_charging_profile(
        ctx, profile_id=None, evse_id=None, purpose="TxDefaultProfile", stack_level=1
    )
    assert cleared == "Accepted"
    assert sorted(p.id for p in station.profiles) == [1, 3]


def test_profiles_survive_a_restart(make_station: StationFactory) -> None:
    station = make_station(clock=ManualClock())
    ctx = context(station)
    daily = profile(
        4,
        "TxDefaultProfile",
        [(0, 32, 3), (8 * 3600, 6, 3)],
        kind="Recurring",
        recurrency_kind="Daily",
        start_schedule="2027-01-15T00:00:00Z",
    )
    assert commands.set_charging_profile(ctx, 1, daily, version="1.6") == "Accepted"
    again = ChargingProfiles(station.store)  # what a restarted station reads
    (kept,) = list(again)
    assert kept.id == 4 and kept.recurrency == "Daily"
    midnight = kept.start
    assert midnight is not None
    # each day: 32 A until 08:00, then 6 A (three phases)
    for day in (0, 1, 30):
        morning = again.limit(1, midnight + day * 86_400 + 3600, None)
        evening = again.limit(1, midnight + day * 86_400 + 20 * 3600, None)
        assert morning is not None and evening is not None
        assert (round(morning.watts), round(evening.watts)) == (22_080, 4_140)


def test_the_composite_schedule(make_station: StationFactory) -> None:
    now = "2027-01-15T08:00:00Z"
    clock = ManualClock(start=parse_ocpp_timestamp(now).timestamp())
    station = make_station(clock=clock)
    ctx = context(station)
    base = profile(
        1,
        "TxDefaultProfile",
        [(0, 11_000, None), (600, 7_000, None)],
        unit="W",
        kind="Absolute",
        start_schedule=now,
    )
    short = profile(
        2,
        "TxDefaultProfile",
        [(0, 5_000, None)],
        unit="W",
        kind="Absolute",
        stack=1,
        duration=300,
        start_schedule=now,
    )
    assert commands.set_charging_profile(ctx, 0, base, version="2.0.1") == "Accepted"
    assert commands.set_charging_profile(ctx, 1, short, version="2.0.1") == "Accepted"
    found = commands.composite_schedule(ctx, 1, 900, "W")
    assert found is not None
    _, unit, periods = found
    assert unit == "W"
    assert periods == [Period(0, 5_000.0), Period(300, 11_000.0), Period(600, 7_000.0)]
    found = commands.composite_schedule(ctx, 1, 900, "A")
    assert found is not None
    assert [p.limit for p in found[2]] == [7.2, 15.9, 10.1]  # W at 230 V on 3 phases
    assert commands.composite_schedule(ctx, 5, 900, "W") is None
    assert commands.periods_ocpp(periods[:1]) == [{"start_period": 0, "limit": 5_000.0}]


def test_a_profile_set_earlier_in_the_same_second_limits_the_first_period(
    make_station: StationFactory,
) -> None:
    """The operator page stamps ``startSchedule`` with milliseconds; a GetCompositeSchedule in
    the same second must not report the hardware's maximum before it (the schedule started at
    the second's truncated start, 0.4 s before the profile did, and listed startPeriod 0
    twice)."""
    clock = ManualClock(start=parse_ocpp_timestamp("2027-01-15T08:00:00.400Z").timestamp())
    station = make_station(clock=clock)
    ctx = context(station)
    limit = profile(
        7,
        "ChargingStationMaxProfile",
        [(0, 7_400, None)],
        unit="W",
        kind="Absolute",
        start_schedule="2027-01-15T08:00:00.400Z",
    )
    assert commands.set_charging_profile(ctx, 0, limit, version="2.0.1") == "Accepted"
    clock.advance(0.5)  # the page's next command, in the same second
    found = commands.composite_schedule(ctx, 1, 600, "W")
    assert found is not None
    start, _, periods = found
    assert periods == [Period(0, 7_400.0)]
    assert start == parse_ocpp_timestamp("2027-01-15T08:00:00.900Z").timestamp()


def test_composite_periods_start_at_increasing_whole_seconds(make_station: StationFactory) -> None:
    """A limit that changes within the schedule's first second: one period per second, the
    one in force at its end (OCPP wants startPeriod strictly increasing)."""
    clock = ManualClock(start=parse_ocpp_timestamp("2027-01-15T08:00:00.100Z").timestamp())
    station = make_station(clock=clock)
    ctx = context(station)
    later = profile(
        8,
        "TxDefaultProfile",
        [(0, 3_000, None)],
        unit="W",
        kind="Absolute",
        start_schedule="2027-01-15T08:00:00.700Z",
    )
    assert commands.set_charging_profile(ctx, 1, later, version="2.0.1") == "Accepted"
    found = commands.composite_schedule(ctx, 1, 600, "W")
    assert found is not None
    starts = [p.start_s for p in found[2]]
    assert starts == sorted(set(starts)), found[2]
    assert found[2][0] == Period(0, 3_000.0)
