"""OCPP security profiles 2 and 3 on the CSMS, over real TLS sockets on 127.0.0.1.

The chargers are the ``ocpp`` library's (``clients.py``) and bare websockets clients; the
certificates are made once for the session (``tls_pki.py``). The CSMS asks every client for
a certificate and verifies any it gets against the charger CA (its ``ca_cert_file``).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.typing import Subprotocol

from config.settings import Settings
from csms import cli as csms_cli
from csms.production import production_problems
from csms.tls import uvicorn_tls_options
from qrcharge_cli import build_parser

from .clients import Client16, Client201, connect
from .conftest import PASSWORD, LiveCsms, basic_auth, make_settings, serve
from .tls_pki import TlsPki

VERSIONS = [("ocpp1.6", Client16), ("ocpp2.0.1", Client201)]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TlsPki:
    return TlsPki(tmp_path_factory.mktemp("pki"))


def tls_settings(tmp_path: Path, pki: TlsPki, **overrides: Any) -> Settings:
    return make_settings(
        tmp_path,
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(pki.server_key),
        ca_cert_file=str(pki.charger_ca),
        ca_key_file=str(pki.charger_ca_key),
        **overrides,
    )


@pytest.fixture
async def tls_csms(tmp_path: Path, pki: TlsPki) -> AsyncIterator[LiveCsms]:
    async with serve(tls_settings(tmp_path, pki), tls=pki.client_context()) as live:
        yield live


def wss(csms: LiveCsms, charger_id: str) -> str:
    return f"wss://127.0.0.1:{csms.port}/ocpp/{charger_id}"


async def add(csms: LiveCsms, charger_id: str, **body: Any) -> dict[str, Any]:
    r = await csms.http.post("/api/v1/admin/chargers", json={"id": charger_id, **body})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def boot(cp: Any) -> str:
    """Sends a BootNotification in the client's version; the status answered."""
    if isinstance(cp, Client16):
        request: Any = call16.BootNotification(charge_point_vendor="test", charge_point_model="t")
    else:
        station = {"vendor_name": "test", "model": "t"}
        request = call201.BootNotification(charging_station=station, reason="PowerUp")
    answer = await cp.call(request, suppress=False)
    return str(answer.status)


async def refusal(
    url: str, tls: ssl.SSLContext | None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """The HTTP status and reason of a refused handshake."""
    with pytest.raises(InvalidStatus) as caught:
        async with websockets.connect(
            url,
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=headers or {},
            ssl=tls,
            open_timeout=5,
        ):
            pass
    response = caught.value.response
    return response.status_code, response.body.decode()


# --- profile 3: the certificate is the credential -------------------------------------------


@pytest.mark.parametrize(("subprotocol", "cls"), VERSIONS)
async def test_profile_3_charger_connects_with_its_certificate_and_no_password(
    tls_csms: LiveCsms, pki: TlsPki, subprotocol: str, cls: type[Any]
) -> None:
    created = await add(tls_csms, "P3-A", security_profile=3)
    assert created["security_profile"] == 3
    tls = pki.client_context("P3-A")
    async with connect(wss(tls_csms, "P3-A"), cls, subprotocol, {}, tls=tls) as cp:
        assert await boot(cp) == "Accepted"
        assert tls_csms.ctx.registry.get("P3-A") is not None


async def test_profile_3_charger_without_a_certificate_is_refused_even_with_its_password(
    tls_csms: LiveCsms, pki: TlsPki
) -> None:
    await add(tls_csms, "P3-PW", security_profile=3, password=PASSWORD)
    url = wss(tls_csms, "P3-PW")
    status, reason = await refusal(url, pki.client_context(), basic_auth("P3-PW"))
    assert (status, reason) == (
        403,
        "security profile 3: a client certificate naming this charger is required",
    )


async def test_a_certificate_naming_another_charger_is_refused_by_the_app(
    tls_csms: LiveCsms, pki: TlsPki
) -> None:
    await add(tls_csms, "P3-A", security_profile=3)
    await add(tls_csms, "P3-B", security_profile=3)
    status, reason = await refusal(wss(tls_csms, "P3-A"), pki.client_context("P3-B"))
    assert status == 403 and "names charger 'P3-B', not this one" in reason
    # on profile 2 the right password does not excuse a certificate that names someone else
    await add(tls_csms, "P2-A", password=PASSWORD)
    url = wss(tls_csms, "P2-A")
    status, reason = await refusal(url, pki.client_context("P3-B"), basic_auth("P2-A"))
    assert status == 403 and "'P3-B'" in reason


async def test_a_certificate_with_two_common_names_is_refused(
    tls_csms: LiveCsms, pki: TlsPki
) -> None:
    await add(tls_csms, "P3-A", security_profile=3)
    status, reason = await refusal(wss(tls_csms, "P3-A"), pki.client_context("P3-A", "P3-B"))
    assert status == 403 and "exactly one subject CN" in reason


@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_a_certificate_from_another_ca_is_refused_at_the_tls_layer(
    tls_csms: LiveCsms,
    pki: TlsPki,
    tls_version: ssl.TLSVersion,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await add(tls_csms, "P3-A", security_profile=3)
    tls = pki.client_context("P3-A", by="rogue")
    tls.maximum_version = tls_version
    caplog.set_level(logging.INFO, logger="csms")
    with pytest.raises((OSError, InvalidMessage)) as caught:
        async with websockets.connect(
            wss(tls_csms, "P3-A"), subprotocols=[Subprotocol("ocpp1.6")], ssl=tls, open_timeout=5
        ):
            pass
    if tls_version == ssl.TLSVersion.TLSv1_2:  # the server's alert ends the handshake itself
        assert isinstance(caught.value, OSError)  # an SSLError (unknown ca), or the reset
    else:  # TLS 1.3: the client finishes first; the server's alert ends the stream unanswered
        assert isinstance(caught.value, InvalidMessage)
    assert not [r for r in caplog.records if r.name.startswith("csms")]  # the app saw nothing
    assert tls_csms.ctx.registry.get("P3-A") is None


async def test_an_intermediate_ca_alone_is_trusted_and_replaces_the_charger_ca(
    tmp_path: Path, pki: TlsPki
) -> None:
    settings = tls_settings(tmp_path, pki, tls_client_ca_file=str(pki.intermediate_ca))
    async with serve(settings, tls=pki.client_context()) as csms:
        await add(csms, "P3-I", security_profile=3)
        tls = pki.client_context("P3-I", by="intermediate")
        async with connect(wss(csms, "P3-I"), Client16, "ocpp1.6", {}, tls=tls) as cp:
            assert await boot(cp) == "Accepted"
        with pytest.raises((OSError, InvalidMessage)):  # the charger CA is not the client CA
            async with websockets.connect(
                wss(csms, "P3-I"),
                subprotocols=[Subprotocol("ocpp1.6")],
                ssl=pki.client_context("P3-I"),
                open_timeout=5,
            ):
                pass


async def test_an_unknown_charger_with_a_certificate_registers_pending_on_profile_3(
    tmp_path: Path, pki: TlsPki
) -> None:
    settings = tls_settings(tmp_path, pki, auto_register_chargers=True)
    async with serve(settings, tls=pki.client_context()) as csms:
        tls = pki.client_context("NEW-1")
        async with connect(wss(csms, "NEW-1"), Client16, "ocpp1.6", {}, tls=tls) as cp:
            assert await boot(cp) == "Pending"
        shown = (await csms.http.get("/api/v1/admin/chargers/NEW-1")).json()
        assert (shown["registration"], shown["security_profile"]) == ("Pending", 3)


async def test_an_unknown_charger_with_a_certificate_is_not_registered_by_default(
    tls_csms: LiveCsms, pki: TlsPki
) -> None:
    status, reason = await refusal(wss(tls_csms, "NEW-2"), pki.client_context("NEW-2"))
    assert (status, reason) == (404, "unknown charger id")
    assert (await tls_csms.http.get("/api/v1/admin/chargers/NEW-2")).status_code == 404


async def test_back_on_profile_2_a_certificate_alone_no_longer_admits(
    tls_csms: LiveCsms, pki: TlsPki
) -> None:
    """What the operator does about a leaked charger key: profile 2 and a new password."""
    await add(tls_csms, "P3-L", security_profile=3)
    changed = {"security_profile": 2, "password": "a-new-password"}
    assert (await tls_csms.http.patch("/api/v1/admin/chargers/P3-L", json=changed)).is_success
    status, _ = await refusal(wss(tls_csms, "P3-L"), pki.client_context("P3-L"))
    assert status == 401
    url, tls = wss(tls_csms, "P3-L"), pki.client_context("P3-L")
    async with connect(url, Client16, "ocpp1.6", basic_auth("P3-L", "a-new-password"), tls=tls):
        pass


# --- profile 2: Basic auth over TLS, on the port that asks for certificates ------------------


@pytest.mark.parametrize(("subprotocol", "cls"), VERSIONS)
async def test_profile_2_charger_connects_over_tls_with_its_password(
    tls_csms: LiveCsms, pki: TlsPki, subprotocol: str, cls: type[Any]
) -> None:
    created = await add(tls_csms, "P2-A", password=PASSWORD)
    assert created["security_profile"] == 2  # the default of a CSMS that serves TLS
    url, tls = wss(tls_csms, "P2-A"), pki.client_context()  # no client certificate
    async with connect(url, cls, subprotocol, basic_auth("P2-A"), tls=tls) as cp:
        assert await boot(cp) == "Accepted"


async def test_profile_2_charger_with_a_wrong_password_is_refused(
    tls_csms: LiveCsms, pki: TlsPki
) -> None:
    await add(tls_csms, "P2-A", password=PASSWORD)
    headers = basic_auth("P2-A", "not-the-password")
    status, _ = await refusal(wss(tls_csms, "P2-A"), pki.client_context(), headers)
    assert status == 401


async def test_profile_2_charger_is_refused_without_tls(csms: LiveCsms) -> None:
    assert (await add(csms, "P1-A", password=PASSWORD))["security_profile"] == 1  # no TLS here
    await add(csms, "P2-A", password=PASSWORD, security_profile=2)
    status, reason = await refusal(csms.ws_url("P2-A"), None, basic_auth("P2-A"))
    assert (status, reason) == (403, "security profile 2: connect over TLS (wss://)")
    async with connect(csms.ws_url("P1-A"), Client16, "ocpp1.6", basic_auth("P1-A")) as cp:
        assert await boot(cp) == "Accepted"


# --- the operator's side ---------------------------------------------------------------------


async def test_operator_api_keeps_a_password_wherever_the_profile_needs_one(
    csms: LiveCsms,
) -> None:
    http: httpx.AsyncClient = csms.http
    chargers = "/api/v1/admin/chargers"
    r = await http.post(chargers, json={"id": "NOPW"})
    assert r.status_code == 422 and "password is required" in r.text
    r = await http.post(chargers, json={"id": "BAD", "password": PASSWORD, "security_profile": 4})
    assert r.status_code == 422
    await add(csms, "P3", security_profile=3)
    r = await http.patch(f"{chargers}/P3", json={"security_profile": 1})
    assert r.status_code == 422 and "needs a password" in r.text
    r = await http.patch(f"{chargers}/P3", json={"security_profile": 1, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["security_profile"] == 1
    async with connect(csms.ws_url("P3"), Client16, "ocpp1.6", basic_auth("P3")) as cp:
        assert await boot(cp) == "Accepted"


def test_settings_that_cannot_be_meant_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tls_client_ca_file needs TLS"):
        uvicorn_tls_options(make_settings(tmp_path, tls_client_ca_file="chargers.pem"))
    production = make_settings(tmp_path, environment="production")
    assert any("production needs TLS" in p for p in production_problems(production))
    behind_proxy = make_settings(tmp_path, environment="production", trusted_proxies="10.0.0.2")
    assert not any("TLS" in p for p in production_problems(behind_proxy))  # the proxy has it
    assert uvicorn_tls_options(behind_proxy) == {}


def test_qrcharge_csms_says_why_it_will_not_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QRCHARGE_ENVIRONMENT", "production")
    monkeypatch.setenv("QRCHARGE_ADMIN_API_KEY", "a-real-secret")
    args = build_parser().parse_args(["csms", "--data-dir", str(tmp_path)])
    assert csms_cli.run(args) == 2
    assert "production needs TLS" in capsys.readouterr().err
