"""The EV and meter model."""

from __future__ import annotations

import pytest

from charge_point.meter import RAMP_S, Ev, Meter


def test_power_ramps_up_to_the_maximum() -> None:
    meter = Meter(max_power_w=22_000)
    meter.plug(Ev.with_soc(60_000, 0.2))
    meter.step(RAMP_S / 2, offering=True)
    assert meter.power_w == pytest.approx(11_000)
    meter.step(RAMP_S, offering=True)
    assert meter.power_w == pytest.approx(22_000)


def test_power_tapers_and_stops_when_full() -> None:
    meter = Meter(max_power_w=10_000)
    ev = Ev.with_soc(10_000, 0.9)
    meter.plug(ev)
    for _ in range(20):
        meter.step(RAMP_S, offering=True)
    assert 0 < meter.power_w < 10_000  # tapering above 80 %
    total = 0
    for _ in range(2000):
        total += meter.step(10, offering=True)
    assert ev.full and meter.power_w == 0 and not meter.ev_wants_power
    assert meter.step(10, offering=True) == 0


def test_register_counts_whole_wh_and_respects_max_wh() -> None:
    meter = Meter(max_power_w=22_000, register_wh=1_000)
    meter.plug(Ev.with_soc(60_000, 0.2))
    gained = meter.step(3600, offering=True, max_wh=500)
    assert gained == 500 and meter.register_wh == 1_500


def test_nothing_flows_when_not_offering_or_unplugged() -> None:
    meter = Meter(max_power_w=22_000)
    assert meter.step(60, offering=True) == 0
    meter.plug(Ev())
    assert meter.step(60, offering=False) == 0 and meter.power_w == 0


def test_bad_ev_is_refused() -> None:
    with pytest.raises(ValueError):
        Ev.with_soc(0, 0.5)
    with pytest.raises(ValueError):
        Ev.with_soc(1000, 1.5)
