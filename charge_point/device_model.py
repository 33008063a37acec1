"""The 2.0.1 device model this charger reports (GetBaseReport / GetReport -> NotifyReport).

What is reported, and nothing it does not know:

* every configuration key of :mod:`charge_point.configuration` under its component.variable
  name, with its mutability (``ReadOnly``, ``ReadWrite``, or ``WriteOnly`` without a value);
* the station's identity: ``ChargingStation`` ``Model`` and ``VendorName``;
* availability: ``AvailabilityState`` and ``Available`` of the ``ChargingStation``, of each
  ``EVSE`` (with its ``Power``) and of each EVSE's one ``Connector``;
* ``DeviceDataCtrlr.ItemsPerMessage[GetReport]``, how many variables one NotifyReport carries.

:func:`snapshot` reads them from a station; :func:`base_report` and :func:`custom_report` select
what a request asked for; :func:`parts` cuts a report into NotifyReport messages. Entries turn
into the library's snake_case ``ReportDataType`` dicts with :meth:`Entry.report_data`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from charge_point.configuration import KEYS
from charge_point.evse import Status, status_201
from charge_point.station import Station

ITEMS_PER_REPORT = 10  # variables per NotifyReport message
BASE_REPORTS = ("ConfigurationInventory", "FullInventory", "SummaryInventory")
AVAILABILITY_STATES = "Available,Occupied,Reserved,Unavailable,Faulted"
_DATA_TYPES = {int: "integer", bool: "boolean", str: "string"}


@dataclass(frozen=True, slots=True)
class Entry:
    """One variable of one component, with its current value."""

    component: str
    variable: str
    value: str | None  # None only for a WriteOnly variable
    mutability: str = "ReadOnly"
    data_type: str = "string"
    evse: int | None = None
    connector: int | None = None
    variable_instance: str | None = None
    values_list: str | None = None
    unit: str | None = None
    max_limit: float | None = None
    constant: bool = False  # never changes while the charger runs
    configuration: bool = False  # part of the ConfigurationInventory
    summary: bool = False  # part of the SummaryInventory
    available: bool = True  # the component's state, for GetReport's componentCriteria
    active: bool = False
    problem: bool = False

    def report_data(self) -> dict[str, Any]:
        """A ``ReportDataType`` as the ocpp library takes it (it camelCases the keys)."""
        component: dict[str, Any] = {"name": self.component}
        if self.evse is not None:
            component["evse"] = {"id": self.evse}
            if self.connector is not None:
                component["evse"]["connector_id"] = self.connector
        variable: dict[str, Any] = {"name": self.variable}
        if self.variable_instance is not None:
            variable["instance"] = self.variable_instance
        attribute: dict[str, Any] = {"type": "Actual", "mutability": self.mutability}
        if self.value is not None:
            attribute["value"] = self.value
        attribute["persistent"] = self.configuration or self.constant
        attribute["constant"] = self.constant
        characteristics: dict[str, Any] = {
            "data_type": self.data_type,
            "supports_monitoring": False,
        }
        if self.values_list is not None:
            characteristics["values_list"] = self.values_list
        if self.unit is not None:
            characteristics["unit"] = self.unit
        if self.max_limit is not None:
            characteristics["max_limit"] = self.max_limit
        return {
            "component": component,
            "variable": variable,
            "variable_attribute": [attribute],
            "variable_characteristics": characteristics,
        }


def snapshot(station: Station, *, model: str, vendor: str) -> list[Entry]:
    """Every variable the charger reports, with its value now."""
    entries = [
        Entry("ChargingStation", "Model", model, constant=True, summary=True),
        Entry("ChargingStation", "VendorName", vendor, constant=True, summary=True),
    ]
    statuses = [c.status for c in station.connectors.values()]
    all_off = all(s in (Status.UNAVAILABLE, Status.FAULTED) for s in statuses)
    entries += _availability(
        "ChargingStation", "Unavailable" if all_off else "Available", None, None, active=True
    )
    entries.append(
        Entry("DeviceDataCtrlr", "ItemsPerMessage", str(ITEMS_PER_REPORT), data_type="integer",
              variable_instance="GetReport", constant=True)
    )  # fmt: skip
    for evse_id, connector in station.connectors.items():
        state = status_201(connector.status)
        busy = evse_id in station.sessions
        entries += _availability("EVSE", state, evse_id, None, active=busy)
        entries.append(
            Entry("EVSE", "Power", str(round(station.meters[evse_id].power_w)),
                  data_type="decimal", evse=evse_id, unit="W",
                  max_limit=station.settings.max_power_w, active=busy,
                  available=state not in ("Unavailable", "Faulted"), problem=state == "Faulted")
        )  # fmt: skip
        entries += _availability("Connector", state, evse_id, 1, active=busy)
    values = dict(station.config.items())
    for key in KEYS:
        mutability = "ReadOnly" if key.readonly else "WriteOnly" if key.secret else "ReadWrite"
        entries.append(
            Entry(key.component, key.variable, None if key.secret else values[key],
                  mutability=mutability, data_type=_DATA_TYPES[key.kind], configuration=True,
                  constant=key.readonly)
        )  # fmt: skip
    return entries


def _availability(
    component: str, state: str, evse: int | None, connector: int | None, *, active: bool
) -> list[Entry]:
    problem = state == "Faulted"
    common: dict[str, Any] = {
        "evse": evse,
        "connector": connector,
        "summary": True,
        "available": state not in ("Unavailable", "Faulted"),
        "active": active,
        "problem": problem,
    }
    return [
        Entry(component, "AvailabilityState", state, data_type="OptionList",
              values_list=AVAILABILITY_STATES, **common),
        Entry(component, "Available", "true", data_type="boolean", **common),
    ]  # fmt: skip


def base_report(entries: list[Entry], base: str) -> list[Entry] | None:
    """The entries of a GetBaseReport ``reportBase``; None for a base this charger lacks."""
    if base == "FullInventory":
        return entries
    if base == "ConfigurationInventory":
        return [e for e in entries if e.configuration]
    if base == "SummaryInventory":
        return [e for e in entries if e.summary]
    return None


def custom_report(
    entries: list[Entry],
    component_variables: Iterable[dict[str, Any]] | None,
    criteria: Iterable[str] | None,
) -> list[Entry]:
    """GetReport: the entries matching any ``componentVariable`` (all when none is given) of
    components meeting any of the ``componentCriteria`` (Active, Available, Enabled, Problem;
    all components when none is given). Names compare case-insensitively, as OCPP says."""
    wanted = list(component_variables or [])
    kept = [e for e in entries if not wanted or any(_matches(e, cv) for cv in wanted)]
    asked = set(criteria or [])
    if not asked:
        return kept
    state = {
        "Active": lambda e: e.active,
        "Available": lambda e: e.available,
        "Enabled": lambda e: e.available,
        "Problem": lambda e: e.problem,
    }
    return [e for e in kept if any(state[c](e) for c in asked if c in state)]


def _matches(entry: Entry, component_variable: dict[str, Any]) -> bool:
    component = component_variable["component"]
    if component["name"].lower() != entry.component.lower() or component.get("instance"):
        return False
    evse = component.get("evse")
    if evse is not None:
        if evse["id"] != entry.evse:
            return False
        connector = evse.get("connector_id")
        if connector is not None and connector != entry.connector:
            return False
    variable = component_variable.get("variable")
    if variable is None:
        return True
    instance = variable.get("instance")
    return variable["name"].lower() == entry.variable.lower() and (
        instance is None or instance == entry.variable_instance
    )


def parts(entries: list[Entry], size: int = ITEMS_PER_REPORT) -> list[list[Entry]]:
    """A report cut into NotifyReport messages of at most ``size`` variables (at least one)."""
    return [entries[i : i + size] for i in range(0, len(entries), size)] or [[]]
