"""2.0.1 GetBaseReport / GetReport end to end: the operator asks a charger (the ``ocpp``
library's ChargePoint over a real WebSocket) for its report, gets the charger's answer, and
then reads the device model that the NotifyReport parts filled."""

from __future__ import annotations

import asyncio
from typing import Any

from ocpp.v201 import call as call201

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth

COMMANDS = "/api/v1/admin/chargers/{}/commands/{}"
DEVICE_MODEL = "/api/v1/admin/chargers/{}/device-model"
EVERYTHING = [  # what Client201 reports, in the API's key order
    ("AuthCtrlr", "Enabled", "Actual", "true"),
    ("EVSE", "Power", "MaxSet", "22000"),
    ("OCPPCommCtrlr", "HeartbeatInterval", "Actual", "120"),
]


def _brief(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["component"], e["variable"], e["attribute_type"], e["value"]) for e in entries]


async def _boot(cp: Any) -> None:
    await cp.call(
        call201.BootNotification(
            charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
        ),
        suppress=False,
    )


async def _device_model_becomes(
    csms: LiveCsms, cp: Any, charger_id: str, expected: list[tuple[Any, ...]]
) -> None:
    """Polls the operator API until the device model is ``expected``, for at most 5 s; the
    charger's report tasks are awaited too, so that a NotifyReport refused by the CSMS fails
    the test with its own error rather than as a timeout."""
    seen: list[tuple[Any, ...]] = []
    async with asyncio.timeout(5):
        while seen != expected:
            for task in cp.report_tasks:
                if task.done():
                    task.result()
            r = await csms.http.get(DEVICE_MODEL.format(charger_id))
            assert r.status_code == 200, r.text
            seen = _brief(r.json())
            if seen != expected:
                await asyncio.sleep(0.02)
    await asyncio.wait_for(asyncio.gather(*cp.report_tasks), 5)


async def test_get_base_report_fills_the_device_model(csms: LiveCsms) -> None:
    await csms.add_charger("RPT1")
    async with connect(csms.ws_url("RPT1"), Client201, "ocpp2.0.1", basic_auth("RPT1")) as cp:
        await _boot(cp)
        assert (await csms.http.get(DEVICE_MODEL.format("RPT1"))).json() == []

        r = await csms.http.post(
            COMMANDS.format("RPT1", "GetBaseReport"), json={"reportBase": "FullInventory"}
        )
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["response"] == {"status": "Accepted"}
        request_id = answer["request_id"]  # generated: the operator gave none
        assert isinstance(request_id, int) and 0 < request_id < 2**31
        assert cp.received == [
            ("GetBaseReport", {"request_id": request_id, "report_base": "FullInventory"})
        ]
        await _device_model_becomes(csms, cp, "RPT1", EVERYTHING)
        # two parts, tbc true then false, both carrying the request's id
        assert [(p["requestId"], p["seqNo"], p["tbc"]) for p in cp.reports_sent] == [
            (request_id, 0, True),
            (request_id, 1, False),
        ]

        # an operator's own requestId is sent as given, and a second id differs from the first
        r = await csms.http.post(
            COMMANDS.format("RPT1", "GetBaseReport"),
            json={"requestId": 42, "reportBase": "ConfigurationInventory"},
        )
        assert (r.status_code, r.json()["request_id"]) == (200, 42)
        r = await csms.http.post(
            COMMANDS.format("RPT1", "GetBaseReport"), json={"reportBase": "SummaryInventory"}
        )
        assert r.status_code == 200 and r.json()["request_id"] not in (request_id, 42)
        await asyncio.wait_for(asyncio.gather(*cp.report_tasks), 5)
        assert [kw["report_base"] for _, kw in cp.received] == [
            "FullInventory",
            "ConfigurationInventory",
            "SummaryInventory",
        ]
        # the two reports may interleave on the wire; each has its parts in order
        assert [p["seqNo"] for p in cp.reports_sent if p["requestId"] == 42] == [0, 1]
        assert len(cp.reports_sent) == 6


async def test_get_report_with_component_variable(csms: LiveCsms) -> None:
    await csms.add_charger("RPT2")
    url = COMMANDS.format("RPT2", "GetReport")
    async with connect(csms.ws_url("RPT2"), Client201, "ocpp2.0.1", basic_auth("RPT2")) as cp:
        await _boot(cp)
        wanted = [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        ]
        r = await csms.http.post(url, json={"requestId": 7, "componentVariable": wanted})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "charger_id": "RPT2",
            "action": "GetReport",
            "response": {"status": "Accepted"},
            "request_id": 7,
            "reservation_id": None,
            "upload_id": None,  # only GetDiagnostics / GetLog to the CSMS's own upload URL
        }
        assert cp.received == [("GetReport", {"request_id": 7, "component_variable": wanted})]
        await _device_model_becomes(
            csms, cp, "RPT2", [("OCPPCommCtrlr", "HeartbeatInterval", "Actual", "120")]
        )
        assert [(p["seqNo"], p["tbc"], p["entries"]) for p in cp.reports_sent] == [(0, False, 1)]

        # nothing matches: the charger's EmptyResultSet reaches the operator, nothing is sent
        r = await csms.http.post(
            url, json={"componentVariable": [{"component": {"name": "NoSuchCtrlr"}}]}
        )
        assert r.status_code == 200, r.text
        assert r.json()["response"] == {"status": "EmptyResultSet"}
        assert isinstance(r.json()["request_id"], int)

        # componentCriteria only, no requestId: the whole report, the earlier entry kept
        r = await csms.http.post(url, json={"componentCriteria": ["Active", "Available"]})
        assert r.status_code == 200 and r.json()["response"] == {"status": "Accepted"}
        assert cp.received[-1][1]["component_criteria"] == ["Active", "Available"]
        await _device_model_becomes(csms, cp, "RPT2", EVERYTHING)
        assert len(cp.report_tasks) == 2  # the EmptyResultSet started no report


async def test_rejected_and_not_supported_answers_reach_the_operator(csms: LiveCsms) -> None:
    await csms.add_charger("RPT3")
    async with connect(csms.ws_url("RPT3"), Client201, "ocpp2.0.1", basic_auth("RPT3")) as cp:
        for status in ("Rejected", "NotSupported"):
            cp.report_status = status
            for action, payload in (
                ("GetBaseReport", {"reportBase": "FullInventory"}),
                ("GetReport", {"requestId": 3}),
            ):
                r = await csms.http.post(COMMANDS.format("RPT3", action), json=payload)
                assert r.status_code == 200, r.text
                assert r.json()["response"] == {"status": status}, action
        assert len(cp.received) == 4 and cp.report_tasks == []
    assert (await csms.http.get(DEVICE_MODEL.format("RPT3"))).json() == []


async def test_a_16_charger_is_refused(csms: LiveCsms) -> None:
    await csms.add_charger("RPT16")
    async with connect(csms.ws_url("RPT16"), Client16, "ocpp1.6", basic_auth("RPT16")) as cp:
        for action, payload in (
            ("GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"}),
            ("GetReport", {"requestId": 1}),
        ):
            r = await csms.http.post(COMMANDS.format("RPT16", action), json=payload)
            assert r.status_code == 422, action
            assert r.json()["detail"] == f"{action} is not an OCPP 1.6 command"
        frames = (await csms.http.get("/api/v1/admin/chargers/RPT16/messages")).json()
        assert not any("Report" in f["frame"] for f in frames)
        assert cp.received == []


async def test_invalid_payloads_are_422_and_never_sent(csms: LiveCsms) -> None:
    await csms.add_charger("RPT4")
    async with connect(csms.ws_url("RPT4"), Client201, "ocpp2.0.1", basic_auth("RPT4")) as cp:
        for action, payload in (
            ("GetBaseReport", {"reportBase": "Everything"}),
            ("GetBaseReport", {}),  # reportBase is required
            ("GetBaseReport", {"requestId": "one", "reportBase": "FullInventory"}),
            ("GetReport", {"componentCriteria": ["Broken"]}),
            ("GetReport", {"componentVariable": [{"variable": {"name": "HeartbeatInterval"}}]}),
        ):
            r = await csms.http.post(COMMANDS.format("RPT4", action), json=payload)
            assert r.status_code == 422, (action, payload, r.text)
            assert f"invalid {action} request" in r.json()["detail"], r.text
        assert cp.received == []
