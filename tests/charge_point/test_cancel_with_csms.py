"""End to end: the driver cancels an order while this charger is connected to this CSMS over a
real socket. The CSMS revokes the start token at the charger before it answers, the hold goes
back at once, and the charger refuses the start QR (reason ``revoked``), also after a restart.
A token the charger already used is not revoked: that cancel is refused (409) or keeps the
hold, and the session is billed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from charge_point.charger import Charger
from qr_extension.refusal import Reason, Refusal
from tests.charge_point.central import until
from tests.charge_point.conftest import station_settings
from tests.charge_point.test_with_csms import PASSWORD, project_csms  # noqa: F401 (fixture)


async def _driver(http: httpx.AsyncClient, funds: int) -> dict[str, str]:
    email, password = "cancel@example.com", "driver-password-1"
    r = await http.post("/api/v1/users", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    r = await http.post("/api/v1/token", data={"username": email, "password": password})
    driver = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await http.post("/api/v1/me/wallet/top-ups", json={"amount": funds}, headers=driver)
    assert r.status_code == 201, r.text
    return driver


async def _available(http: httpx.AsyncClient, driver: dict[str, str]) -> int:
    body: dict[str, Any] = (await http.get("/api/v1/me", headers=driver)).json()
    wallet = body.get("wallet", body)
    return int(wallet.get("available", wallet.get("balance")))


async def _order(http: httpx.AsyncClient, driver: dict[str, str], cp_id: str) -> dict[str, Any]:
    r = await http.post(
        "/api/v1/orders", json={"charger_id": cp_id, "evse_id": 1, "amount": 4000}, headers=driver
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    return order


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_cancel_revokes_at_the_reference_charger(
    tmp_path: Path,
    project_csms: tuple[int, httpx.AsyncClient, object],  # noqa: F811
    version: str,
) -> None:
    port, http, _ = project_csms
    cp_id = f"CP-CANCEL-{version.replace('.', '')}"
    r = await http.post(
        "/api/v1/admin/chargers", json={"id": cp_id, "password": PASSWORD, "evses": 2}
    )
    assert r.status_code == 201, r.text
    settings = station_settings(
        tmp_path,
        charge_point_id=cp_id,
        ocpp_version=version,
        csms_url=f"ws://127.0.0.1:{port}/ocpp",
        password=PASSWORD,
        trust_first_keys=True,
    )
    driver = await _driver(http, 20_000)
    cancelled = await _order(http, driver, cp_id)
    used = await _order(http, driver, cp_id)
    assert await _available(http, driver) == 12_000

    charger = Charger(settings)
    task = asyncio.create_task(charger.run())
    try:
        station = charger.station
        await until(lambda: station.online and len(station.trusted) > 0, 15, "boot + keys")
        r = await http.post(f"/api/v1/orders/{cancelled['id']}/cancel", headers=driver)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "id": cancelled["id"],
            "status": "cancelled",
            "hold_released": True,
            "hold_release_at": None,
            "revoked_at_charger": True,
            "hold_amount": 4000,
        }
        assert station.store.is_revoked(cancelled["id"])  # stored before the CSMS answered
        assert await _available(http, driver) == 16_000

        # the other order's code is scanned first: the charger used it, so no revocation
        station.plug(1, capacity_wh=60_000, soc=0.3)
        assert not isinstance(station.scan(used["start_token"]), Refusal)
        r = await http.post(f"/api/v1/orders/{used['id']}/cancel", headers=driver)
        if r.status_code == 200:  # the cancel got there before the StartTransaction
            assert r.json()["revoked_at_charger"] is False
            assert r.json()["hold_released"] is False
        else:
            assert r.status_code == 409 and "started" in r.json()["detail"], r.text
        assert not station.store.is_revoked(used["id"])
        await until(lambda: station.store.queue_len() == 0, 10, "start delivered")
        r = await http.get(f"/api/v1/orders/{used['id']}", headers=driver)
        assert r.json()["status"] in ("started", "settled")  # honoured, billed from the hold
        assert await _available(http, driver) == 16_000  # the used order keeps its hold
        station.unplug(1)
        await until(lambda: station.store.queue_len() == 0, 10, "end delivered")
        r = await http.get(f"/api/v1/orders/{used['id']}", headers=driver)
        assert r.json()["status"] == "settled"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()

    # the charger restarts from the same state dir: the cancelled order's code stays refused
    charger = Charger(settings)
    try:
        station = charger.station
        station.plug(1, capacity_wh=60_000, soc=0.3)
        refused = station.scan(cancelled["start_token"])
        assert isinstance(refused, Refusal) and refused.reason is Reason.REVOKED
        assert station.display.snapshot()["text"] == "Code refused: revoked"
    finally:
        charger.store.close()
