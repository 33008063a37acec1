"""The charger over ``wss://``: it verifies the CSMS against its CA file, and presents its
client certificate (security profile 3) or its password (profile 2).

Against this project's CSMS and against a central written with the ``ocpp`` library that
itself demands a client certificate; the certificates are made for the session.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from charge_point.cli import register, settings_from_args
from charge_point.link import Link
from charge_point.settings import StationSettings
from charge_point.station import Station
from config.settings import Settings
from tests.charge_point.central import Central, serve, until
from tests.csms.conftest import ADMIN_KEY
from tests.csms.conftest import serve as serve_csms
from tests.csms.tls_pki import TlsPki

PASSWORD = "cp-tls-password"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsPki:
    return TlsPki(tmp_path_factory.mktemp("cp-pki"))


@contextlib.asynccontextmanager
async def tls_csms(tmp_path: Path, pki: TlsPki) -> AsyncIterator[tuple[int, httpx.AsyncClient]]:
    """This project's CSMS on wss://127.0.0.1:<port>, asking for client certificates signed
    by the charger CA; with an operator client."""
    settings = Settings(
        data_dir=tmp_path / "csms",
        admin_api_key=ADMIN_KEY,  # type: ignore[call-arg]
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(pki.server_key),
        ca_cert_file=str(pki.charger_ca),
        ca_key_file=str(pki.charger_ca_key),
    )
    tls = ssl.create_default_context(cafile=str(pki.server_ca))
    async with serve_csms(settings, tls=tls) as live:
        yield live.port, live.http


@contextlib.asynccontextmanager
async def running(station: Station) -> AsyncIterator[Link]:
    link = Link(station)
    task = asyncio.create_task(link.run())
    try:
        yield link
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("profile", [2, 3])
async def test_charger_connects_to_the_csms_over_wss(
    tmp_path: Path,
    pki: TlsPki,
    make_station: Callable[..., Station],
    version: str,
    profile: int,
) -> None:
    cp_id = f"CP-TLS-{profile}-{version.replace('.', '')}"
    credentials: dict[str, Any] = {"password": PASSWORD}
    if profile == 3:  # the certificate instead of the password
        cert, key = pki.client(cp_id)
        credentials = {"client_cert_file": cert, "client_key_file": key}
    async with tls_csms(tmp_path, pki) as (port, http):
        body: dict[str, Any] = {"id": cp_id, "evses": 1, "security_profile": profile}
        if profile == 2:
            body["password"] = PASSWORD
        assert (await http.post("/api/v1/admin/chargers", json=body)).status_code == 201
        station = make_station(
            charge_point_id=cp_id,
            ocpp_version=version,
            csms_url=f"wss://127.0.0.1:{port}/ocpp",
            ca_file=pki.server_ca,
            evses=1,
            **credentials,
        )
        async with running(station) as link:
            await until(lambda: station.online, 10, "boot over wss")
            shown = (await http.get(f"/api/v1/admin/chargers/{cp_id}")).json()
            assert (shown["connected"], shown["security_profile"]) == (True, profile)
            assert link.connects == 1


async def test_charger_presents_its_certificate_to_a_central_that_demands_one(
    pki: TlsPki, make_station: Callable[..., Station]
) -> None:
    """A third-party central (websockets + ocpp) with client certificates required."""
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    server_tls.verify_mode = ssl.CERT_REQUIRED
    server_tls.load_verify_locations(cafile=str(pki.charger_ca))
    central = Central()
    server = await serve(central, tls=server_tls)
    cert, key = pki.client("CP-3P")
    station = make_station(
        charge_point_id="CP-3P",
        ocpp_version="2.0.1",
        csms_url=f"wss://localhost:{central.port}/ocpp",  # the host name is checked too
        ca_file=pki.server_ca,
        client_cert_file=cert,
        client_key_file=key,
    )
    try:
        async with running(station):
            await until(lambda: station.online, 10, "boot over wss")
            peer = central.connections["CP-3P"]._connection.transport.get_extra_info("peercert")
            assert dict(field[0] for field in peer["subject"])["commonName"] == "CP-3P"
    finally:
        server.close()
        await server.wait_closed()


async def test_charger_refuses_a_csms_its_ca_did_not_sign(
    pki: TlsPki, make_station: Callable[..., Station]
) -> None:
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    central = Central()
    server = await serve(central, tls=server_tls)
    station = make_station(
        csms_url=f"wss://127.0.0.1:{central.port}/ocpp",
        ca_file=pki.charger_ca,  # not the CA of the CSMS's certificate
        password=PASSWORD,
    )
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await Link(station)._connect_once()
        assert central.messages == []
    finally:
        server.close()
        await server.wait_closed()


def test_tls_settings_need_a_wss_url_and_a_certificate_for_a_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="need a wss:// CSMS URL"):
        StationSettings("CP", csms_url="ws://127.0.0.1/ocpp", ca_file=tmp_path / "ca.pem")
    with pytest.raises(ValueError, match="--client-key needs --client-cert"):
        StationSettings("CP", csms_url="wss://x/ocpp", client_key_file=tmp_path / "k.pem")
    assert StationSettings("CP", csms_url="WSS://x/ocpp", ca_file=tmp_path / "ca.pem").uses_tls


def test_tls_flags_and_settings_reach_the_charger(
    tmp_path: Path, pki: TlsPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    cert, key = pki.client("CP-F")
    base = ["cp", "--id", "CP-F", "--state-dir", str(tmp_path), "--csms", "wss://h/ocpp"]
    flags = ["--ca-file", str(pki.server_ca), "--client-cert", str(cert), "--client-key", str(key)]
    settings = settings_from_args(parser.parse_args([*base, *flags]))
    assert (settings.ca_file, settings.client_cert_file, settings.client_key_file) == (
        pki.server_ca,
        cert,
        key,
    )
    with pytest.raises(ValueError, match="--fleet cannot share one"):
        settings_from_args(parser.parse_args([*base, *flags, "--fleet", "3"]))
    monkeypatch.setenv("QRCHARGE_CP_CA_FILE", str(pki.server_ca))
    monkeypatch.setenv("QRCHARGE_CP_CLIENT_CERT_FILE", str(cert))
    settings = settings_from_args(parser.parse_args(base))
    assert (settings.ca_file, settings.client_cert_file, settings.client_key_file) == (
        pki.server_ca,
        cert,
        None,  # the key is then read from the certificate file
    )


async def test_an_unreadable_client_certificate_stops_the_charger_at_start(
    tmp_path: Path, make_station: Callable[..., Station]
) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    station = make_station(csms_url="wss://127.0.0.1:1/ocpp", client_cert_file=broken)
    with pytest.raises(ssl.SSLError):
        Link(station)
