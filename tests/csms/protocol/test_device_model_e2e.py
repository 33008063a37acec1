"""2.0.1 NotifyReport end to end: the ``ocpp`` library's ChargePoint reports its device model
over a real WebSocket, the operator reads it back through the API."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth

NOW = "2026-11-27T02:00:00.000Z"
DEVICE_MODEL = "/api/v1/admin/chargers/{}/device-model"

PART_0: list[dict[str, Any]] = [
    {
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "HeartbeatInterval"},
        "variable_attribute": [{"type": "Actual", "value": "120", "persistent": True}],
        "variable_characteristics": {
            "data_type": "integer",
            "unit": "s",
            "min_limit": 1,
            "supports_monitoring": False,
        },
    },
    {
        "component": {"name": "AuthCtrlr"},
        "variable": {"name": "Enabled"},
        "variable_attribute": [{"value": "true", "mutability": "ReadOnly"}],
    },
]
PART_1: list[dict[str, Any]] = [
    {
        "component": {"name": "Connector", "evse": {"id": 1, "connector_id": 1}},
        "variable": {"name": "ConnectorType"},
        "variable_attribute": [{"value": "cType2", "constant": True}],
        "variable_characteristics": {
            "data_type": "OptionList",
            "values_list": "cType2,cCCS2",
            "supports_monitoring": True,
        },
    },
    {  # schema-valid but bare: no attribute type, value or characteristics
        "component": {"name": "SecurityCtrlr", "instance": "Main"},
        "variable": {"name": "BasicAuthPassword", "instance": "Primary"},
        "variable_attribute": [{"mutability": "WriteOnly"}],
    },
]


async def _report(cp: Any, request_id: int, parts: list[list[dict[str, Any]]]) -> None:
    for seq_no, part in enumerate(parts):
        answer = await cp.call(
            call201.NotifyReport(
                request_id=request_id,
                generated_at=NOW,
                seq_no=seq_no,
                report_data=part or None,  # an empty part has no reportData
                tbc=seq_no < len(parts) - 1,
            ),
            suppress=False,  # a CALLERROR raises
        )
        assert answer is not None


def _brief(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["component"], e["variable"], e["attribute_type"], e["value"]) for e in entries]


async def test_a_report_in_two_parts_then_a_repeated_report(csms: LiveCsms) -> None:
    await csms.add_charger("DM1")
    url = DEVICE_MODEL.format("DM1")
    async with connect(csms.ws_url("DM1"), Client201, "ocpp2.0.1", basic_auth("DM1")) as cp:
        await cp.call(
            call201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
            ),
            suppress=False,
        )
        assert (await csms.http.get(url)).json() == []  # no report yet
        await _report(cp, 7, [PART_0])
        after_first_part = (await csms.http.get(url)).json()
        assert _brief(after_first_part) == [
            ("AuthCtrlr", "Enabled", "Actual", "true"),
            ("OCPPCommCtrlr", "HeartbeatInterval", "Actual", "120"),
        ]
        await _report(cp, 7, [[], PART_1])  # a part without reportData is answered too
        full = (await csms.http.get(url)).json()
        assert _brief(full) == [
            ("AuthCtrlr", "Enabled", "Actual", "true"),
            ("Connector", "ConnectorType", "Actual", "cType2"),
            ("OCPPCommCtrlr", "HeartbeatInterval", "Actual", "120"),
            ("SecurityCtrlr", "BasicAuthPassword", "Actual", None),
        ]
        auth, connector, heartbeat, secret = full
        assert (auth["mutability"], auth["evse_id"], auth["data_type"]) == ("ReadOnly", None, None)
        assert (connector["evse_id"], connector["connector_id"], connector["constant"]) == (
            1,
            1,
            True,
        )
        assert (connector["values_list"], connector["supports_monitoring"]) == (
            "cType2,cCCS2",
            True,
        )
        assert (heartbeat["unit"], heartbeat["min_limit"], heartbeat["persistent"]) == (
            "s",
            1.0,
            True,
        )
        assert (secret["component_instance"], secret["variable_instance"]) == ("Main", "Primary")
        assert secret["mutability"] == "WriteOnly"

        changed = [
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "variable_attribute": [{"type": "Actual", "value": "300"}],
            },
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "variable_attribute": [{"type": "Target", "value": "600"}],
            },
        ]
        await _report(cp, 8, [PART_0[1:], changed])
    again = (await csms.http.get(url)).json()
    assert _brief(again) == [
        ("AuthCtrlr", "Enabled", "Actual", "true"),
        ("Connector", "ConnectorType", "Actual", "cType2"),
        ("OCPPCommCtrlr", "HeartbeatInterval", "Actual", "300"),
        ("OCPPCommCtrlr", "HeartbeatInterval", "Target", "600"),
        ("SecurityCtrlr", "BasicAuthPassword", "Actual", None),
    ]
    filtered = await csms.http.get(url, params={"component": "ocppcommctrlr", "limit": 1})
    assert _brief(filtered.json()) == [("OCPPCommCtrlr", "HeartbeatInterval", "Actual", "300")]
    second = await csms.http.get(
        url, params={"variable": "HeartbeatInterval", "offset": 1, "limit": 1}
    )
    assert _brief(second.json()) == [("OCPPCommCtrlr", "HeartbeatInterval", "Target", "600")]
    assert (await csms.http.get(url, params={"limit": 0})).status_code == 422


async def test_unknown_charger_is_404_and_a_16_charger_is_409(csms: LiveCsms) -> None:
    missing = await csms.http.get(DEVICE_MODEL.format("NOPE"))
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    await csms.add_charger("DM16")
    assert (await csms.http.get(DEVICE_MODEL.format("DM16"))).json() == []  # version unknown
    async with connect(csms.ws_url("DM16"), Client16, "ocpp1.6", basic_auth("DM16")) as cp:
        await cp.call(
            call16.BootNotification(charge_point_model="M", charge_point_vendor="V"),
            suppress=False,
        )
    refused = await csms.http.get(DEVICE_MODEL.format("DM16"))
    assert refused.status_code == 409
    assert "1.6" in refused.json()["detail"] and "GetConfiguration" in refused.json()["detail"]


async def test_device_model_is_in_the_openapi_document(csms: LiveCsms) -> None:
    spec = (await csms.http.get("/openapi.json")).json()
    operation = spec["paths"]["/api/v1/admin/chargers/{charger_id}/device-model"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {
        "charger_id",
        "component",
        "variable",
        "offset",
        "limit",
    }
    assert {"404", "409"} <= set(operation["responses"])
