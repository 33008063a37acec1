"""The device model store (2.0.1 NotifyReport) on SQLite and PostgreSQL, without sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from csms.store import chargers
from csms.store.db import Database
from csms.store.device_model import list_device_variables, rows_from_report, store_report_part
from csms.store.models import DeviceVariable, DeviceVariablePublic

from ..conftest import migrated

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def item(
    component: str,
    variable: str,
    *attributes: dict[str, Any],
    evse: dict[str, int] | None = None,
    component_instance: str | None = None,
    variable_instance: str | None = None,
    characteristics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``report_data`` entry as the library hands it to the handler (snake_case)."""
    comp: dict[str, Any] = {"name": component}
    if evse is not None:
        comp["evse"] = evse
    if component_instance is not None:
        comp["instance"] = component_instance
    var: dict[str, Any] = {"name": variable}
    if variable_instance is not None:
        var["instance"] = variable_instance
    entry: dict[str, Any] = {
        "component": comp,
        "variable": var,
        "variable_attribute": list(attributes),
    }
    if characteristics is not None:
        entry["variable_characteristics"] = characteristics
    return entry


HEARTBEAT = item(
    "OCPPCommCtrlr",
    "HeartbeatInterval",
    {"type": "Actual", "value": "120", "mutability": "ReadWrite", "persistent": True},
    characteristics={"data_type": "integer", "unit": "s", "min_limit": 1, "max_limit": 86400,
                     "supports_monitoring": False},
)  # fmt: skip
CURRENT = item(
    "SmartChargingCtrlr",
    "Limit",
    {"type": "Actual", "value": "16"},
    {"type": "MaxSet", "value": "32", "mutability": "ReadOnly", "constant": True},
    evse={"id": 1, "connector_id": 2},
)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    async with migrated(db_url, ("D1", "D2"), NOW) as database:
        yield database


async def _store(db: Database, charger_id: str, report: list[Any], now: datetime = NOW) -> bool:
    async with db.session() as session:
        return await store_report_part(session, rows_from_report(charger_id, report, now=now))


async def _all(db: Database, charger_id: str, **filters: Any) -> list[DeviceVariablePublic]:
    async with db.session() as session:
        rows = await list_device_variables(session, charger_id=charger_id, **filters)
    return [DeviceVariablePublic.of(r) for r in rows]


def test_rows_take_ocpp_defaults_and_skip_nameless_entries() -> None:
    odd = [
        item("Connector", "Available", {}),  # no type, value, mutability: OCPP defaults
        {"component": {"name": "X"}, "variable_attribute": [{"value": "1"}]},  # no variable
        {"component": {}, "variable": {"name": "Y"}, "variable_attribute": [{}]},  # no name
        item("Nothing", "Reported"),  # no attribute: nothing to store
        "not an object",
    ]
    rows = rows_from_report("D1", odd, now=NOW)
    assert rows == [
        {
            "charger_id": "D1",
            "component": "Connector",
            "component_instance": "",
            "evse_id": 0,
            "connector_id": 0,
            "variable": "Available",
            "variable_instance": "",
            "attribute_type": "Actual",
            "value": None,
            "mutability": "ReadWrite",
            "persistent": False,
            "constant": False,
            "data_type": None,
            "unit": None,
            "min_limit": None,
            "max_limit": None,
            "values_list": None,
            "supports_monitoring": None,
            "updated_at": NOW,
        }
    ]


def test_a_key_repeated_in_one_part_keeps_the_last_value() -> None:
    twice = [
        item("C", "V", {"value": "first"}),
        item("C", "V", {"type": "Actual", "value": "second"}),
        item("C", "V", {"type": "Target", "value": "target"}),
    ]
    rows = rows_from_report("D1", twice, now=NOW)
    assert [(r["attribute_type"], r["value"]) for r in rows] == [
        ("Actual", "second"),
        ("Target", "target"),
    ]


async def test_report_parts_are_stored_and_a_later_report_replaces_values(db: Database) -> None:
    assert await _store(db, "D1", [HEARTBEAT])  # part 0 (tbc)
    assert await _store(db, "D1", [CURRENT])  # part 1
    first = await _all(db, "D1")
    assert [(v.component, v.variable, v.attribute_type, v.value) for v in first] == [
        ("OCPPCommCtrlr", "HeartbeatInterval", "Actual", "120"),
        ("SmartChargingCtrlr", "Limit", "Actual", "16"),
        ("SmartChargingCtrlr", "Limit", "MaxSet", "32"),
    ]
    heartbeat, actual, maxset = first
    assert (heartbeat.evse_id, heartbeat.connector_id, heartbeat.component_instance) == (
        None,
        None,
        None,
    )
    assert (heartbeat.data_type, heartbeat.unit, heartbeat.min_limit, heartbeat.max_limit) == (
        "integer",
        "s",
        1.0,
        86400.0,
    )
    assert heartbeat.persistent and not heartbeat.constant and heartbeat.mutability == "ReadWrite"
    assert heartbeat.supports_monitoring is False and heartbeat.updated_at == NOW
    assert (actual.evse_id, actual.connector_id) == (1, 2)
    assert (maxset.mutability, maxset.constant) == ("ReadOnly", True)

    later = NOW + timedelta(hours=1)
    changed = item("OCPPCommCtrlr", "HeartbeatInterval", {"value": "300"})
    assert await _store(db, "D1", [changed], now=later)
    again = await _all(db, "D1")
    assert len(again) == 3  # replaced, not added
    assert (again[0].value, again[0].updated_at, again[0].persistent) == ("300", later, False)
    assert again[0].data_type is None  # the later report had no characteristics
    assert [v.value for v in again[1:]] == ["16", "32"]  # untouched


async def test_instances_and_evses_are_separate_entries(db: Database) -> None:
    report = [
        item("EVSE", "Power", {"value": "11000"}, evse={"id": 1}),
        item("EVSE", "Power", {"value": "22000"}, evse={"id": 2}),
        item("Connector", "Type", {"value": "cType2"}, evse={"id": 1, "connector_id": 1}),
        item("Ctrlr", "Name", {"value": "a"}, component_instance="A"),
        item("Ctrlr", "Name", {"value": "b"}, component_instance="B"),
        item("Ctrlr", "Name", {"value": "x"}, variable_instance="X"),
    ]
    assert await _store(db, "D1", report)
    rows = await _all(db, "D1")
    assert [
        (r.component, r.component_instance, r.evse_id, r.connector_id, r.variable_instance, r.value)
        for r in rows
    ] == [
        ("Connector", None, 1, 1, None, "cType2"),
        ("Ctrlr", None, None, None, "X", "x"),
        ("Ctrlr", "A", None, None, None, "a"),
        ("Ctrlr", "B", None, None, None, "b"),
        ("EVSE", None, 1, None, None, "11000"),
        ("EVSE", None, 2, None, None, "22000"),
    ]
    assert await _store(db, "D1", report)  # the same report again changes nothing
    assert len(await _all(db, "D1")) == 6


async def test_filters_paging_and_chargers_are_separate(db: Database) -> None:
    report = [item("C", f"V{n:02}", {"value": str(n)}) for n in range(12)]
    report.append(HEARTBEAT)
    assert await _store(db, "D1", report)
    assert await _store(db, "D2", [item("C", "V00", {"value": "other charger"})])
    pages = [await _all(db, "D1", component="c", offset=o, limit=5) for o in (0, 5, 10)]
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [v.variable for p in pages for v in p] == [f"V{n:02}" for n in range(12)]
    hb = await _all(db, "D1", variable="heartbeatinterval")
    assert [(v.component, v.value) for v in hb] == [("OCPPCommCtrlr", "120")]
    assert await _all(db, "D1", component="C", variable="V03") == [
        v for v in pages[0] if v.variable == "V03"
    ]
    assert [v.value for v in await _all(db, "D2")] == ["other charger"]
    assert await _all(db, "NOBODY") == []


async def test_a_deleted_charger_drops_its_report_and_its_device_model(db: Database) -> None:
    assert await _store(db, "D2", [HEARTBEAT])
    async with db.session() as session:
        assert await chargers.delete_charger(session, charger_id="D2")
    async with db.session() as session:
        left = await session.exec(select(DeviceVariable).where(DeviceVariable.charger_id == "D2"))
        assert left.all() == []
    assert await _store(db, "D2", [HEARTBEAT]) is False  # reported after its deletion
    assert await _store(db, "D1", []) is True  # an empty part is fine
