"""Firmware, diagnostics / log and smart-charging commands to chargers we did not write: the
``ocpp`` library's own ChargePoint answering Rejected (or not at all) gets the operator a clean
answer, the CSMS records only what was accepted, and 1.6 status notifications are tied to the
newest request."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth

PROFILE_16 = {
    "connectorId": 1,
    "csChargingProfiles": {
        "chargingProfileId": 3,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}],
        },
    },
}
PROFILE_201 = {
    "evseId": 1,
    "chargingProfile": {
        "id": 3,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}],
            }
        ],
    },
}


class Refusing16(Client16):  # type: ignore[misc]
    """Refuses profiles, has nothing to upload, does not implement UpdateFirmware."""

    @on("SetChargingProfile")
    def on_set_profile(self, **kw: Any) -> Any:
        return result16.SetChargingProfile(status="Rejected")

    @on("ClearChargingProfile")
    def on_clear_profile(self, **kw: Any) -> Any:
        return result16.ClearChargingProfile(status="Unknown")

    @on("GetCompositeSchedule")
    def on_composite(self, **kw: Any) -> Any:
        return result16.GetCompositeSchedule(status="Rejected")

    @on("GetDiagnostics")
    def on_diagnostics(self, location: str, **kw: Any) -> Any:
        self._note("GetDiagnostics", location=location)
        return result16.GetDiagnostics()


class Refusing201(Client201):  # type: ignore[misc]
    @on("SetChargingProfile")
    def on_set_profile(self, **kw: Any) -> Any:
        return result201.SetChargingProfile(status="Rejected")

    @on("UpdateFirmware")
    def on_update_firmware(self, **kw: Any) -> Any:
        return result201.UpdateFirmware(status="Rejected")

    @on("GetLog")
    def on_get_log(self, log: dict[str, Any], **kw: Any) -> Any:
        self._note("GetLog", log=log)
        return result201.GetLog(status="Rejected")


async def test_a_library_charger_refusing_on_16(csms: LiveCsms) -> None:
    await csms.add_charger("LIB16")
    url = "/api/v1/admin/chargers/LIB16"
    async with connect(csms.ws_url("LIB16"), Refusing16, "ocpp1.6", basic_auth("LIB16")) as cp:
        r = await csms.http.post(f"{url}/commands/SetChargingProfile", json=PROFILE_16)
        assert r.status_code == 200 and r.json()["response"] == {"status": "Rejected"}
        r = await csms.http.post(f"{url}/commands/ClearChargingProfile", json={"id": 3})
        assert r.json()["response"] == {"status": "Unknown"}
        r = await csms.http.post(
            f"{url}/commands/GetCompositeSchedule", json={"connectorId": 1, "duration": 60}
        )
        assert r.json()["response"] == {"status": "Rejected"}
        assert (await csms.http.get(f"{url}/charging-profiles")).json() == []

        # the operator's own location goes out as given, and no upload is offered
        given = {"location": "ftp://logs.example.org/in/"}
        r = await csms.http.post(f"{url}/commands/GetDiagnostics", json=given)
        assert r.status_code == 200 and r.json()["upload_id"] is None
        assert r.json()["response"] == {}
        request_id = r.json()["request_id"]
        assert cp.received[-1] == ("GetDiagnostics", {"location": "ftp://logs.example.org/in/"})
        # a charger that does not implement UpdateFirmware: a clean 502
        r = await csms.http.post(
            f"{url}/commands/UpdateFirmware",
            json={"location": "http://x.example/fw.bin", "retrieveDate": "2027-01-01T00:00:00Z"},
        )
        assert r.status_code == 502, r.text
        # 2.0.1 names are refused on a 1.6 connection
        r = await csms.http.post(f"{url}/commands/GetLog", json={"logType": "DiagnosticsLog"})
        assert r.status_code == 422
        # its DiagnosticsStatusNotification carries no id: the newest request's is kept
        await cp.call(call16.DiagnosticsStatusNotification(status="Uploading"))
    rows = (await csms.http.get(f"{url}/diagnostics")).json()
    assert [(r["action"], r["status"], r["request_id"]) for r in reversed(rows)] == [
        ("GetDiagnostics", "NoFile", request_id),
        ("DiagnosticsStatusNotification", "Uploading", request_id),
    ]
    assert rows[-1]["detail"] == "ftp://logs.example.org/in/"
    steps = (await csms.http.get(f"{url}/firmware")).json()  # the 502 is its request's end
    assert [(r["action"], r["status"]) for r in steps] == [("UpdateFirmware", "NotImplemented")]


async def test_a_library_charger_refusing_on_201(csms: LiveCsms) -> None:
    await csms.add_charger("LIB201")
    url = "/api/v1/admin/chargers/LIB201"
    async with connect(csms.ws_url("LIB201"), Refusing201, "ocpp2.0.1", basic_auth("LIB201")) as cp:
        r = await csms.http.post(f"{url}/commands/SetChargingProfile", json=PROFILE_201)
        assert r.json()["response"] == {"status": "Rejected"}
        firmware = {
            "location": "http://x.example/fw.bin",
            "retrieveDateTime": "2027-01-01T00:00:00Z",
        }
        r = await csms.http.post(
            f"{url}/commands/UpdateFirmware", json={"requestId": 11, "firmware": firmware}
        )
        assert r.status_code == 200 and r.json()["response"] == {"status": "Rejected"}
        assert r.json()["request_id"] == 11
        r = await csms.http.post(f"{url}/commands/GetLog", json={"logType": "SecurityLog"})
        assert r.json()["response"] == {"status": "Rejected"}
        sent_log = cp.received[-1][1]["log"]
        assert sent_log["remote_location"].startswith(
            f"{csms.ctx.settings.public_base_url}/api/v1/uploads/LIB201/"
        )
        r = await csms.http.post(f"{url}/commands/GetDiagnostics", json={})
        assert r.status_code == 422
        # malformed before the CSMS completes it, or a request id no charger can hold: a 422
        # naming it, nothing sent, no step and no upload slot kept
        sent = len(cp.received)
        for bad in (
            {"logType": "DiagnosticsLog", "log": "x"},
            {"logType": "DiagnosticsLog", "requestId": 2**31},
        ):
            r = await csms.http.post(f"{url}/commands/GetLog", json=bad)
            assert r.status_code == 422 and "invalid GetLog request" in r.json()["detail"], r.text
        assert len(cp.received) == sent
        await cp.call(call201.FirmwareStatusNotification(status="Downloading", request_id=11))
    rows = (await csms.http.get(f"{url}/firmware")).json()
    assert [(r["action"], r["status"], r["request_id"]) for r in reversed(rows)] == [
        ("UpdateFirmware", "Rejected", 11),
        ("FirmwareStatusNotification", "Downloading", 11),
    ]
    log_steps = (await csms.http.get(f"{url}/diagnostics")).json()
    assert [(r["action"], r["status"]) for r in log_steps] == [("GetLog", "Rejected")]
    assert (await csms.http.get(f"{url}/charging-profiles")).json() == []
    assert (await csms.http.get(f"{url}/uploads")).json() == []
