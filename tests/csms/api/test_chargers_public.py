"""GET /api/v1/chargers/{id}: what the identification QR opens, with the presence code check,
and the operator's presence secret (stored, shown once, pushed to a connected charger)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ocpp.v16 import call as call16

from qr_extension import presence_code

from ..clients import Client16, Client201, connect
from ..conftest import Clock, MoneyApi, basic_auth, make_settings, serve_money

ADMIN = "/api/v1/admin"


async def test_charger_info_for_visitors_and_drivers(api: MoneyApi) -> None:
    await api.add_charger("CP1", evses=2, location="Depot A")
    r = await api.http.get("/api/v1/chargers/CP1", params={"evse": 2})
    assert r.status_code == 200
    info = r.json()
    assert info["id"] == "CP1" and info["location"] == "Depot A"
    assert info["online"] is False
    assert info["evses"] == [
        {"evse_id": 1, "status": "Unknown"},
        {"evse_id": 2, "status": "Unknown"},
    ]
    assert info["evse"] == {"evse_id": 2, "status": "Unknown"}
    assert info["billing_model"]["id"] == api.settings.default_tariff_id
    assert info["max_order_amount"] == api.settings.max_order_amount
    assert info["presence"] == "not_given"
    _, auth = await api.driver("v@example.org")
    mine = await api.http.get("/api/v1/chargers/CP1", headers=auth)
    assert mine.status_code == 200 and mine.json()["evse"] is None


async def test_max_order_amount_follows_the_cap(api: MoneyApi) -> None:
    await api.add_charger("CP2")
    body = {"id": "capped", "currency": "CNY", "energy_price": 10000, "cap": 1234}
    assert (await api.http.post(f"{ADMIN}/billing-models", json=body,
                                headers=api.admin())).status_code == 201  # fmt: skip
    r = await api.http.post(
        f"{ADMIN}/billing-models/capped/assignments", json={"charger_id": "CP2"},
        headers=api.admin(),
    )  # fmt: skip
    assert r.status_code == 201
    info = (await api.http.get("/api/v1/chargers/CP2")).json()
    assert info["max_order_amount"] == 1234 and info["billing_model"]["cap"] == 1234


async def test_unknown_charger_evse_and_bad_token(api: MoneyApi) -> None:
    await api.add_charger("CP3", evses=1)
    assert (await api.http.get("/api/v1/chargers/NOPE")).status_code == 404
    r = await api.http.get("/api/v1/chargers/CP3", params={"evse": 2})
    assert r.status_code == 404 and "no EVSE 2" in r.json()["detail"]
    assert (await api.http.get("/api/v1/chargers/CP3", params={"evse": -1})).status_code == 422
    r = await api.http.get("/api/v1/chargers/CP3", headers={"Authorization": "Bearer junk"})
    assert r.status_code == 401


async def test_presence_code_checked_when_given(api: MoneyApi) -> None:
    await api.add_charger("CP4")
    step, digits = api.settings.identification_step_s, api.settings.identification_digits
    r = await api.http.get("/api/v1/chargers/CP4", params={"t": "123456"})
    assert r.status_code == 403
    assert r.json()["detail"]["reason"] == "presence_not_configured"

    r = await api.http.put(f"{ADMIN}/chargers/CP4/presence-secret", headers=api.admin())
    assert r.status_code == 200
    created = r.json()
    secret = bytes.fromhex(created["secret_hex"])
    assert len(secret) == 32
    assert created["installed"] is False and created["install_status"] == "NotConnected"
    state = await api.http.get(f"{ADMIN}/chargers/CP4/presence-secret", headers=api.admin())
    assert state.json()["configured"] is True and "secret_hex" not in state.json()

    now = api.ctx.now_s()
    code = presence_code(secret, now, step_s=step, digits=digits)
    r = await api.http.get("/api/v1/chargers/CP4", params={"evse": 1, "t": code})
    assert r.status_code == 200 and r.json()["presence"] == "verified"

    wrong = str((int(code) + 1) % 10**digits).zfill(digits)
    for bad in (wrong, "abcdef", "1234567"[: digits - 1]):
        r = await api.http.get("/api/v1/chargers/CP4", params={"t": bad})
        assert r.status_code == 403, bad
        assert r.json()["detail"]["reason"] == "presence_code_invalid"
        assert "scan the screen again" in r.json()["detail"]["message"]

    api.clock.advance(3 * step)  # the code of three steps ago is stale
    r = await api.http.get("/api/v1/chargers/CP4", params={"t": code})
    assert r.status_code == 403 and r.json()["detail"]["reason"] == "presence_code_invalid"

    mine = "00112233445566778899aabbccddeeff"
    r = await api.http.put(
        f"{ADMIN}/chargers/CP4/presence-secret", json={"secret_hex": mine}, headers=api.admin()
    )
    assert r.json()["secret_hex"] == mine
    code = presence_code(bytes.fromhex(mine), api.ctx.now_s(), step_s=step, digits=digits)
    assert (await api.http.get("/api/v1/chargers/CP4", params={"t": code})).status_code == 200
    r = await api.http.put(
        f"{ADMIN}/chargers/CP4/presence-secret", json={"secret_hex": "abcd"}, headers=api.admin()
    )
    assert r.status_code == 422  # shorter than 16 bytes
    r = await api.http.delete(f"{ADMIN}/chargers/CP4/presence-secret", headers=api.admin())
    assert r.status_code == 204
    r = await api.http.get("/api/v1/chargers/CP4", params={"t": code})
    assert r.json()["detail"]["reason"] == "presence_not_configured"
    r = await api.http.put(f"{ADMIN}/chargers/NOPE/presence-secret", headers=api.admin())
    assert r.status_code == 404
    assert (await api.http.put(f"{ADMIN}/chargers/CP4/presence-secret")).status_code == 401


async def test_presence_secret_is_installed_on_connected_chargers(tmp_path: Path) -> None:
    """1.6: ChangeConfiguration IdentificationSecret; 2.0.1: SetVariables
    QrChargeCtrlr.IdentificationSecret. Online state shows in the charger info."""
    settings = make_settings(tmp_path)
    async with serve_money(settings, Clock()) as (api, port):
        for charger_id in ("P16", "P201"):
            await api.add_charger(charger_id, evses=1)
        url = f"ws://127.0.0.1:{port}/ocpp/"
        async with (
            connect(url + "P16", Client16, "ocpp1.6", basic_auth("P16", "charger-pass")) as cp16,
            connect(url + "P201", Client201, "ocpp2.0.1",
                    basic_auth("P201", "charger-pass")) as cp201,
        ):  # fmt: skip
            await cp16.call(
                call16.BootNotification(charge_point_model="M", charge_point_vendor="V"),
                suppress=False,
            )
            r16 = await api.http.put(f"{ADMIN}/chargers/P16/presence-secret", headers=api.admin())
            r201 = await api.http.put(f"{ADMIN}/chargers/P201/presence-secret", headers=api.admin())
            info = (await api.http.get("/api/v1/chargers/P16")).json()
            await asyncio.sleep(0)
        assert r16.json()["installed"] is True and r16.json()["install_status"] == "Accepted"
        assert r201.json()["installed"] is True
        assert ("ChangeConfiguration",
                {"key": "IdentificationSecret", "value": r16.json()["secret_hex"]}
                ) in cp16.received  # fmt: skip
        ((_, sent),) = [(a, kw) for a, kw in cp201.received if a == "SetVariables"]
        (data,) = sent["set_variable_data"]
        assert data["attribute_value"] == r201.json()["secret_hex"]
        assert data["component"]["name"] == "QrChargeCtrlr"
        assert data["variable"]["name"] == "IdentificationSecret"
        assert info["online"] is True
        # the message log, read by every operator role, keeps the frames without the secret
        for charger_id, answer in (("P16", r16), ("P201", r201)):
            # the message log is written in batches after the frames: wait for the CALL's row
            for _ in range(100):
                log = await api.http.get(
                    f"{ADMIN}/chargers/{charger_id}/messages", headers=api.admin()
                )
                assert log.status_code == 200
                frames = " ".join(str(row) for row in log.json())
                if "IdentificationSecret" in frames:
                    break
                await asyncio.sleep(0.05)
            assert "IdentificationSecret" in frames and "[redacted]" in frames
            assert answer.json()["secret_hex"] not in frames
