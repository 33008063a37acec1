"""Authorize, firmware/diagnostics/log status, security events, NotifyReport; TLS (profile 2)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from websockets.typing import Subprotocol

from csms.store.models import Charger

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth, make_settings, serve

NOW = "2026-11-26T10:00:00.000Z"


async def test_authorize_and_notifications_16(csms: LiveCsms) -> None:
    await csms.add_charger("N16")
    tags = [
        {"id_tag": "GOOD"},
        {"id_tag": "BLOCKED", "status": "Blocked"},
        {"id_tag": "OLD", "expiry": "2020-01-01T00:00:00Z"},
        {"id_tag": "LATER", "expiry": "2099-01-01T00:00:00Z"},
    ]
    for tag in tags:
        assert (await csms.http.put("/api/v1/admin/id-tags", json=tag)).status_code == 200
    async with connect(csms.ws_url("N16"), Client16, "ocpp1.6", basic_auth("N16")) as cp:
        infos = [
            (await cp.call(call16.Authorize(id_tag=tag), suppress=False)).id_tag_info
            for tag in ("GOOD", "BLOCKED", "OLD", "LATER", "NOBODY")
        ]
        await cp.call(call16.FirmwareStatusNotification(status="Installing"), suppress=False)
        await cp.call(call16.DiagnosticsStatusNotification(status="Uploaded"), suppress=False)
        await cp.call(
            call16.SecurityEventNotification(type="FirmwareUpdated", timestamp=NOW, tech_info="v2"),
            suppress=False,
        )
        await cp.call(
            call16.LogStatusNotification(status="Uploading", request_id=3), suppress=False
        )
    assert infos == [
        {"status": "Accepted"},
        {"status": "Blocked"},
        {"status": "Expired", "expiry_date": "2020-01-01T00:00:00.000Z"},
        {"status": "Accepted", "expiry_date": "2099-01-01T00:00:00.000Z"},
        {"status": "Invalid"},
    ]
    async with csms.ctx.db.session() as session:
        row = await session.get(Charger, "N16")
    assert row is not None
    assert (row.firmware_status, row.diagnostics_status) == ("Installing", "Uploading")


async def test_authorize_and_notifications_201(csms: LiveCsms) -> None:
    await csms.add_charger("N201")
    await csms.http.put("/api/v1/admin/id-tags", json={"id_tag": "CARD"})
    async with connect(csms.ws_url("N201"), Client201, "ocpp2.0.1", basic_auth("N201")) as cp:
        good = await cp.call(
            call201.Authorize(id_token={"id_token": "CARD", "type": "ISO14443"}), suppress=False
        )
        bad = await cp.call(
            call201.Authorize(id_token={"id_token": "X", "type": "ISO14443"}), suppress=False
        )
        await cp.call(call201.FirmwareStatusNotification(status="Downloaded"), suppress=False)
        await cp.call(
            call201.LogStatusNotification(status="Uploaded", request_id=3), suppress=False
        )
        await cp.call(
            call201.SecurityEventNotification(type="TamperDetectionActivated", timestamp=NOW),
            suppress=False,
        )
        report = await cp.call(
            call201.NotifyReport(request_id=1, generated_at=NOW, seq_no=0, tbc=False),
            suppress=False,
        )
    assert good.id_token_info == {"status": "Accepted"}
    assert bad.id_token_info == {"status": "Invalid"}
    assert report is not None
    async with csms.ctx.db.session() as session:
        row = await session.get(Charger, "N201")
    assert row is not None
    assert (row.firmware_status, row.diagnostics_status) == ("Downloaded", "Uploaded")


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_security_profile_2_basic_auth_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    settings = make_settings(tmp_path, tls_cert_file=str(cert), tls_key_file=str(key))
    context = ssl.create_default_context(cafile=str(cert))
    async with serve(settings, tls=context) as csms:
        await csms.add_charger("TLS1")
        url = f"wss://127.0.0.1:{csms.port}/ocpp/TLS1"
        async with websockets.connect(
            url,
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=basic_auth("TLS1"),
            ssl=context,
        ) as ws:
            await ws.send('[2,"hb","Heartbeat",{}]')
            assert str(await ws.recv()).startswith('[3,"hb"')
