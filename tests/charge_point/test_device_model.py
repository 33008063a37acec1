"""The 2.0.1 device model read from a station, and how reports select from it (no sockets)."""

from __future__ import annotations

from collections.abc import Callable

from charge_point import device_model
from charge_point.device_model import Entry
from charge_point.station import Station


def model(station: Station) -> list[Entry]:
    return device_model.snapshot(station, model="M", vendor="V")


def test_every_configuration_key_is_reported_once(make_station: Callable[..., Station]) -> None:
    station = make_station()
    config = device_model.base_report(model(station), "ConfigurationInventory")
    assert config is not None
    names = [(e.component, e.variable) for e in config]
    assert len(names) == len(set(names)) == len(station.config.items())
    assert device_model.base_report(model(station), "NoSuchBase") is None


def test_a_faulted_evse_is_the_problem_and_not_available(
    make_station: Callable[..., Station],
) -> None:
    station = make_station()
    station.fault(2)
    problems = device_model.custom_report(model(station), None, ["Problem"])
    assert {(e.component, e.evse) for e in problems} == {("EVSE", 2), ("Connector", 2)}
    state = {(e.component, e.evse, e.variable): e.value for e in model(station)}
    assert state["EVSE", 2, "AvailabilityState"] == "Faulted"
    assert state["ChargingStation", None, "AvailabilityState"] == "Available"
    available = device_model.custom_report(model(station), None, ["Available"])
    assert ("EVSE", 2) not in {(e.component, e.evse) for e in available}


def test_a_report_is_cut_into_parts_of_the_advertised_size(
    make_station: Callable[..., Station],
) -> None:
    entries = model(make_station())
    parts = device_model.parts(entries)
    assert [len(p) for p in parts[:-1]] == [device_model.ITEMS_PER_REPORT] * (len(parts) - 1)
    assert sum(len(p) for p in parts) == len(entries)
    assert device_model.parts([]) == [[]]
