"""The 2.0.1 charger's device model and the other 2.0.1 requests it answers, against a
central system that asks for the base report right after boot (B07), as many do; and an
unsupported request answered NotImplemented with one WARNING, not an ERROR traceback."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.v201 import call as call201

from qr_extension.refusal import Refusal
from tests.charge_point.central import until
from tests.charge_point.conftest import CP_ID, TokenFactory
from tests.interop.centrals import HEARTBEAT_S, PendingReporting201, Reporting201, Seen
from tests.interop.conftest import Run


def variables(reports: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """(component, evse, connector, variable, instance) -> the variable's attribute."""
    out = {}
    for part in reports:
        for item in part.get("report_data") or []:
            component, variable = item["component"], item["variable"]
            evse = component.get("evse") or {}
            key = (
                component["name"],
                evse.get("id"),
                evse.get("connector_id"),
                variable["name"],
                variable.get("instance"),
            )
            out[key] = item["variable_attribute"][0]
    return out


def complete(reports: list[dict[str, Any]], request_id: int) -> bool:
    mine = [r for r in reports if r["request_id"] == request_id]
    return bool(mine) and mine[-1]["tbc"] is False


def central(seen: Seen) -> Reporting201:
    cp = seen.live[CP_ID]
    assert isinstance(cp, Reporting201)
    return cp


async def test_the_base_report_asked_right_after_boot_arrives_in_parts(run_against: Run) -> None:
    async with run_against(None, Reporting201, "2.0.1") as (charger, seen):
        cp = central(seen)
        await until(lambda: complete(cp.reports, Reporting201.REQUEST_ID), what="the report")
        assert [a.status for a in cp.answers] == ["Accepted"]
        parts = cp.reports
        assert [p["seq_no"] for p in parts] == list(range(len(parts))) and len(parts) > 1
        assert all(p["tbc"] for p in parts[:-1]) and parts[-1]["tbc"] is False
        assert len({p["generated_at"] for p in parts}) == 1
        found = variables(parts)
        assert found["ChargingStation", None, None, "Model", None]["value"] == "qrcharge-reference"
        assert found["ChargingStation", None, None, "VendorName", None]["value"] == "qrcharge"
        for evse in (1, 2):
            assert found["EVSE", evse, None, "AvailabilityState", None]["value"] == "Available"
            assert found["Connector", evse, 1, "AvailabilityState", None]["value"] == "Available"
        beat = found["OCPPCommCtrlr", None, None, "HeartbeatInterval", None]
        assert beat == {
            "type": "Actual", "mutability": "ReadWrite", "value": str(HEARTBEAT_S),
            "persistent": True, "constant": False,
        }  # fmt: skip
        secret = found["QrChargeCtrlr", None, None, "IdentificationSecret", None]
        assert secret["mutability"] == "WriteOnly" and "value" not in secret
        assert found["EVSE", None, None, "Count", None]["mutability"] == "ReadOnly"
        # the charger went on as usual: statuses, one connection
        await until(lambda: seen.count("StatusNotification") >= 2, what="statuses")
        assert seen.connections == {CP_ID: 1} and charger.link.connects == 1


async def test_a_pending_charger_sends_the_report_its_csms_asked_for(run_against: Run) -> None:
    """B02: a CSMS may keep the charger Pending while it reads the device model; the report
    must go out before the charger is accepted (and nothing else does)."""
    async with run_against(None, PendingReporting201, "2.0.1") as (charger, seen):
        await until(lambda: seen.count("StatusNotification") >= 2, what="accepted, statuses")
        cp = central(seen)
        assert complete(cp.reports, Reporting201.REQUEST_ID)
        actions = [a for _, a, _ in seen.calls]
        boots = [i for i, a in enumerate(actions) if a == "BootNotification"]
        assert len(boots) == 2  # Pending, then Accepted
        while_pending = actions[boots[0] + 1 : boots[1]]
        assert while_pending and set(while_pending) == {"NotifyReport"}
        assert "StatusNotification" in actions[boots[1] :]
        assert seen.connections == {CP_ID: 1} and charger.link.connects == 1


async def test_other_base_reports_and_a_custom_report(run_against: Run) -> None:
    async with run_against(None, Reporting201, "2.0.1") as (charger, seen):
        cp = central(seen)
        await until(lambda: complete(cp.reports, Reporting201.REQUEST_ID), what="first report")
        answer = await cp.call(
            call201.GetBaseReport(request_id=8, report_base="ConfigurationInventory"),
            suppress=False,
        )
        assert answer.status == "Accepted"
        await until(lambda: complete(cp.reports, 8), what="configuration report")
        config = variables([r for r in cp.reports if r["request_id"] == 8])
        assert {k[0] for k in config} >= {"OCPPCommCtrlr", "AuthCtrlr", "TxCtrlr"}
        assert "ChargingStation" not in {k[0] for k in config}

        await cp.call(call201.GetBaseReport(request_id=9, report_base="SummaryInventory"))
        await until(lambda: complete(cp.reports, 9), what="summary report")
        summary = variables([r for r in cp.reports if r["request_id"] == 9])
        assert ("EVSE", 2, None, "AvailabilityState", None) in summary
        assert "OCPPCommCtrlr" not in {k[0] for k in summary}

        charger.station.change_availability(2, operative=False)
        wanted = [
            {
                "component": {"name": "evse", "evse": {"id": 2}},
                "variable": {"name": "availabilitystate"},
            },
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        ]
        answer = await cp.call(call201.GetReport(request_id=10, component_variable=wanted))
        assert answer.status == "Accepted"
        await until(lambda: complete(cp.reports, 10), what="custom report")
        custom = variables([r for r in cp.reports if r["request_id"] == 10])
        assert set(custom) == {
            ("EVSE", 2, None, "AvailabilityState", None),
            ("OCPPCommCtrlr", None, None, "HeartbeatInterval", None),
        }
        assert custom["EVSE", 2, None, "AvailabilityState", None]["value"] == "Unavailable"
        answer = await cp.call(call201.GetReport(request_id=11, component_criteria=["Problem"]))
        assert answer.status == "EmptyResultSet"  # nothing is faulted
        answer = await cp.call(
            call201.GetReport(
                request_id=12, component_variable=[{"component": {"name": "Nothing"}}]
            )
        )
        assert answer.status == "EmptyResultSet"


async def test_transaction_status_cost_and_charging_profiles(
    run_against: Run, token: TokenFactory
) -> None:
    async with run_against(None, Reporting201, "2.0.1") as (charger, seen):
        cp = central(seen)
        station = charger.station
        answer = await cp.call(call201.GetTransactionStatus(), suppress=False)
        assert answer.messages_in_queue is False and answer.ongoing_indicator is None
        station.plug(1)
        assert not isinstance(station.scan(token("ORDERS", station.now())), Refusal)
        txn = station.sessions[1].local_id
        answer = await cp.call(call201.GetTransactionStatus(transaction_id=txn))
        assert answer.ongoing_indicator is True
        answer = await cp.call(call201.GetTransactionStatus(transaction_id="nope"))
        assert answer.ongoing_indicator is False and answer.messages_in_queue is False
        await cp.call(call201.CostUpdated(total_cost=12.34, transaction_id=txn), suppress=False)
        assert "12.34" in station.display.snapshot()["text"]
        answer = await cp.call(
            call201.GetChargingProfiles(request_id=1, charging_profile={"stack_level": 0}),
            suppress=False,
        )
        assert answer.status == "NoProfiles"
        answer = await cp.call(call201.ClearChargingProfile(), suppress=False)
        assert answer.status == "Unknown"
        # customData, which every 2.0.1 request may carry, is accepted
        answer = await cp.call(
            call201.RequestStopTransaction(transaction_id=txn, custom_data={"vendorId": "x"}),
            suppress=False,
        )
        assert answer.status == "Accepted" and 1 not in station.sessions


async def test_an_unsupported_request_is_a_warning_naming_it(
    run_against: Run, caplog: pytest.LogCaptureFixture
) -> None:
    async with run_against(None, Reporting201, "2.0.1") as (charger, seen):
        cp = central(seen)
        caplog.clear()
        caplog.set_level(logging.WARNING)
        with pytest.raises(OcppNotImplemented):
            await cp.call(call201.ClearDisplayMessage(id=1), suppress=False)
        charging_station = [r for r in caplog.records if f"{CP_ID}:" in r.getMessage()]
        (record,) = [r for r in charging_station if "ClearDisplayMessage" in r.getMessage()]
        assert record.levelno == logging.WARNING and record.exc_info is None
        assert "does not implement" in record.getMessage()
        assert charger.link.connects == 1
