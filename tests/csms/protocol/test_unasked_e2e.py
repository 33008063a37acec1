"""What a charger sends unasked, over a real socket: answered schema-valid, and kept.

The chargers are the ``ocpp`` library's own ChargePoint classes, which check every answer
against the official schemas (``call`` raises on an invalid one, and on a CALLERROR with
``suppress=False``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from csms.store.models import Charger

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth, make_settings, serve
from ..pki import chain, csr, write_ca

NOW = "2026-12-06T10:00:00.000Z"


def _as_sent(request: Any) -> dict[str, Any]:
    """The camelCase payload the library puts on the wire for ``request``."""
    sent: dict[str, Any] = snake_to_camel_case(remove_nones(serialize_as_dict(request)))
    return sent


async def _kept(csms: LiveCsms, charger_id: str) -> list[dict[str, Any]]:
    r = await csms.http.get(f"/api/v1/admin/chargers/{charger_id}/notifications?limit=1000")
    assert r.status_code == 200, r.text
    kept: list[dict[str, Any]] = r.json()
    return kept


UNASKED_201: list[tuple[Any, dict[str, Any]]] = [
    # request, what the answer says (besides being schema-valid)
    (call201.NotifyEvent(generated_at=NOW, seq_no=0, tbc=False, event_data=[{
        "event_id": 1, "timestamp": NOW, "trigger": "Alerting", "actual_value": "Faulted",
        "event_notification_type": "HardWiredNotification",
        "component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Problem"},
    }]), {}),
    (call201.NotifyMonitoringReport(request_id=5, seq_no=0, generated_at=NOW, monitor=[{
        "component": {"name": "EVSE"}, "variable": {"name": "Power"},
        "variable_monitoring": [{"id": 1, "transaction": False, "value": 22000.0,
                                 "type": "UpperThreshold", "severity": 5}],
    }]), {}),
    (call201.NotifyCustomerInformation(data="no data kept", seq_no=0, generated_at=NOW,
                                       request_id=6), {}),
    (call201.NotifyDisplayMessages(request_id=7, message_info=[{
        "id": 1, "priority": "NormalCycle", "message": {"format": "UTF8", "content": "Hi"},
    }]), {}),
    (call201.NotifyEVChargingNeeds(evse_id=1, charging_needs={
        "requested_energy_transfer": "AC_three_phase",
        "ac_charging_parameters": {"energy_amount": 20000, "ev_min_current": 6,
                                   "ev_max_current": 32, "ev_max_voltage": 400},
    }), {"status": "Rejected"}),  # no schedule will follow
    (call201.NotifyEVChargingSchedule(time_base=NOW, evse_id=1, charging_schedule={
        "id": 1, "charging_rate_unit": "A",
        "charging_schedule_period": [{"start_period": 0, "limit": 16.0}],
    }), {"status": "Accepted"}),
    (call201.ReportChargingProfiles(request_id=8, charging_limit_source="CSO", evse_id=1,
                                    tbc=False, charging_profile=[{
        "id": 1, "stack_level": 0, "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Absolute",
        "charging_schedule": [{"id": 1, "charging_rate_unit": "W", "start_schedule": NOW,
                               "charging_schedule_period": [{"start_period": 0,
                                                             "limit": 11000.0}]}],
    }]), {}),
    (call201.ReservationStatusUpdate(reservation_id=9, reservation_update_status="Expired"), {}),
    (call201.PublishFirmwareStatusNotification(status="Published", request_id=10,
                                               location=["http://local.example/fw.bin"]), {}),
    (call201.Get15118EVCertificate(iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
                                   action="Install", exi_request="AAAA"), {"status": "Failed"}),
    (call201.GetCertificateStatus(ocsp_request_data={
        "hash_algorithm": "SHA256", "issuer_name_hash": "aa", "issuer_key_hash": "bb",
        "serial_number": "01", "responder_url": "http://ocsp.example",
    }), {"status": "Failed"}),
    (call201.SignCertificate(csr=csr("N201U")[0], certificate_type="ChargingStationCertificate"),
     {"status": "Rejected"}),  # no CA configured
    (call201.ClearedChargingLimit(charging_limit_source="EMS", evse_id=1), {}),
    (call201.NotifyChargingLimit(evse_id=1, charging_limit={
        "charging_limit_source": "EMS", "is_grid_critical": True}), {}),
    (call201.FirmwareStatusNotification(status="Installed", request_id=11), {}),
    (call201.LogStatusNotification(status="Uploaded", request_id=12), {}),
    (call201.SecurityEventNotification(type="FirmwareUpdated", timestamp=NOW, tech_info="v2"),
     {}),
]  # fmt: skip


async def test_every_unasked_201_message_is_answered_and_kept(csms: LiveCsms) -> None:
    await csms.add_charger("N201U")
    async with connect(csms.ws_url("N201U"), Client201, "ocpp2.0.1", basic_auth("N201U")) as cp:
        for request, expected in UNASKED_201:
            answer = await cp.call(request, suppress=False)  # schema-checked by the library
            said = {key: getattr(answer, key) for key in expected}
            assert said == expected, (request, answer)
    kept = await _kept(csms, "N201U")
    sent = [(type(request).__name__, _as_sent(request)) for request, _ in UNASKED_201]
    assert [(k["action"], k["payload"]) for k in reversed(kept)] == sent  # newest first
    by_action = {k["action"]: k for k in kept}
    assert by_action["NotifyEvent"]["status"] == "Alerting"
    assert by_action["NotifyEvent"]["occurred_at"].startswith("2026-12-06T10:00:00")
    assert by_action["NotifyMonitoringReport"]["request_id"] == 5
    assert by_action["ReservationStatusUpdate"]["status"] == "Expired"
    assert by_action["SecurityEventNotification"]["status"] == "FirmwareUpdated"
    assert by_action["SignCertificate"]["answer"] == "Rejected"
    assert by_action["NotifyEVChargingNeeds"]["answer"] == "Rejected"
    only = await csms.http.get("/api/v1/admin/chargers/N201U/notifications?action=NotifyEvent")
    assert [k["action"] for k in only.json()] == ["NotifyEvent"]
    assert (await csms.http.get("/api/v1/admin/chargers/NOPE/notifications")).status_code == 404


async def test_the_16_security_extension_messages_are_answered_and_kept(csms: LiveCsms) -> None:
    await csms.add_charger("N16U")
    requests = [
        call16.SignedFirmwareStatusNotification(status="SignatureVerified", request_id=3),
        call16.SecurityEventNotification(
            type="InvalidFirmwareSignature", timestamp=NOW, tech_info="bad signature"
        ),
        call16.LogStatusNotification(status="Uploaded", request_id=4),
        call16.FirmwareStatusNotification(status="Installed"),
        call16.DiagnosticsStatusNotification(status="Uploaded"),
    ]
    async with connect(csms.ws_url("N16U"), Client16, "ocpp1.6", basic_auth("N16U")) as cp:
        for request in requests:
            await cp.call(request, suppress=False)
        signed = await cp.call(call16.SignCertificate(csr=csr("N16U")[0]), suppress=False)
    assert signed.status == "Rejected"  # no CA configured
    kept = await _kept(csms, "N16U")
    assert [(k["action"], k["payload"]) for k in reversed(kept[1:])] == [
        (type(r).__name__, _as_sent(r)) for r in requests
    ]
    assert (kept[0]["action"], kept[0]["answer"]) == ("SignCertificate", "Rejected")
    assert kept[0]["payload"]["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert kept[-1]["request_id"] == 3 and kept[-1]["status"] == "SignatureVerified"
    async with csms.ctx.db.session() as session:
        charger = await session.get(Charger, "N16U")
    assert charger is not None and charger.firmware_status == "Installed"


def _leaf(certificate_chain: str, ca: x509.Certificate, charger_id: str) -> x509.Certificate:
    (leaf,) = chain(certificate_chain)
    leaf.verify_directly_issued_by(ca)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == charger_id
    return leaf


async def test_with_a_ca_the_charger_gets_its_certificate_after_the_answer(
    tmp_path: Path,
) -> None:
    cert_file, key_file, ca = write_ca(tmp_path)
    settings = make_settings(tmp_path, ca_cert_file=str(cert_file), ca_key_file=str(key_file))
    async with serve(settings) as csms:
        await csms.add_charger("CA16")
        async with connect(csms.ws_url("CA16"), Client16, "ocpp1.6", basic_auth("CA16")) as cp:
            bad = await cp.call(call16.SignCertificate(csr="garbage"), suppress=False)
            request, key = csr("NOT-ME")  # the CA names the charger it talks to, not the CSR
            good = await cp.call(call16.SignCertificate(csr=request), suppress=False)
            sent = await asyncio.wait_for(cp.certificates.get(), 5)
            assert cp.certificates.empty()  # nothing for the refused request
        assert (bad.status, good.status) == ("Rejected", "Accepted")
        leaf = _leaf(sent["certificate_chain"], ca, "CA16")
        assert leaf.public_key() == key.public_key()
        kept = await _kept(csms, "CA16")
        assert [(k["action"], k["answer"]) for k in kept] == [
            ("CertificateSigned", None),
            ("SignCertificate", "Accepted"),
            ("SignCertificate", "Rejected"),
        ]
        assert kept[0]["status"] == format(leaf.serial_number, "x")
        assert kept[0]["payload"]["certificateChain"] == sent["certificate_chain"]

        await csms.add_charger("CA201")
        async with connect(csms.ws_url("CA201"), Client201, "ocpp2.0.1", basic_auth("CA201")) as cp:
            v2g = await cp.call(
                call201.SignCertificate(csr=csr("CA201")[0], certificate_type="V2GCertificate"),
                suppress=False,
            )
            good = await cp.call(call201.SignCertificate(csr=csr("CA201")[0]), suppress=False)
            sent = await asyncio.wait_for(cp.certificates.get(), 5)
        assert v2g.status == "Rejected" and v2g.status_info["reason_code"] == "NotSupported"
        assert good.status == "Accepted"
        assert sent["certificate_type"] == "ChargingStationCertificate"
        _leaf(sent["certificate_chain"], ca, "CA201")
