"""Paid orders across two CSMS nodes (one PostgreSQL, the real Redis): the driver uses node A's
HTTP API, the reference charger is connected to node B.

* remote-started: the order placed and remote-started on A reaches the charger through B; the
  charger charges, ends, sends its settlement and ``Synced`` to B; the elected node captures it.
* offline QR: the charger is offline when it reads the order's start QR; the driver uploads
  the charger's settlement through A at the moment the charger comes back and syncs its
  transaction and the same settlement over OCPP to B.

Either way the database holds one transaction, one settlement, one payment captured once and
one capture in the ledger, and the money adds up.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from charge_point.charger import Charger
from qr_extension.qr import decode_qr
from tests.charge_point.conftest import station_settings
from tests.cluster.test_redis_cluster import two_nodes
from tests.csms.conftest import PASSWORD, LiveCsms, pg_url
from tests.faults.checks import assert_invariants, rows

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
__all__ = ["pg_url"]

FUNDS = 60_000
FAST = {  # the elected node captures a settled order a second after its settlement arrived
    "auto_capture_s": 1,
    "reaper_interval_s": 0.2,
    "leader_heartbeat_s": 0.2,
    "leader_retry_s": 0.2,
}


async def until(check: Callable[[], Any], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        done = check()
        if asyncio.iscoroutine(done):
            done = await done
        if done:
            return
        assert time.monotonic() < deadline, f"not in {timeout_s} s: {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
def prefix() -> str:
    return f"qrtest-{uuid.uuid4().hex[:10]}"


async def charger_on(node: LiveCsms, tmp_path: Path, charger_id: str, version: str) -> Charger:
    """The reference charger on ``node`` (registered and accepted through it), once it has
    booted, trusts the CSMS keys and its settlement key is pinned."""
    r = await node.http.post(
        "/api/v1/admin/chargers", json={"id": charger_id, "password": PASSWORD, "evses": 2}
    )
    assert r.status_code == 201, r.text
    r = await node.http.patch(
        f"/api/v1/admin/chargers/{charger_id}", json={"registration": "Accepted"}
    )
    assert r.status_code == 200, r.text
    return Charger(
        station_settings(
            tmp_path,
            charge_point_id=charger_id,
            ocpp_version=version,
            csms_url=f"ws://127.0.0.1:{node.port}/ocpp",
            password=PASSWORD,
            trust_first_keys=True,
            time_scale=600,  # 1 kWh in a fraction of a second; the clocks stay true
        )
    )


async def ready(node: LiveCsms, charger: Charger) -> None:
    station = charger.station
    await until(lambda: station.online and len(station.trusted) > 0, 15, "boot and keys")
    charger_id = station.settings.charge_point_id

    async def pinned() -> bool:
        r = await node.http.get(f"/api/v1/admin/chargers/{charger_id}/settlement-keys")
        return r.status_code == 200 and station.key.kid in [k.get("kid") for k in r.json()]

    await until(pinned, 10, "settlement key pinned")


async def driver_on(node: LiveCsms, email: str) -> dict[str, str]:
    bearer = await node.driver(email)
    r = await node.http.post("/api/v1/me/wallet/top-ups", json={"amount": FUNDS}, headers=bearer)
    assert r.status_code == 201, r.text
    return bearer


async def order_on(node: LiveCsms, bearer: dict[str, str], charger_id: str) -> dict[str, Any]:
    r = await node.http.post(
        "/api/v1/orders",
        json={"charger_id": charger_id, "evse_id": 1, "energy_wh": 1000},
        headers=bearer,
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    return order


async def counted_once(database_url: str, order_id: str, charger_id: str) -> int:
    """The order's rows, counted in the database: one of each; the captured amount."""
    (txns,) = await rows(
        database_url,
        "SELECT count(*) FROM transactions WHERE charger_id = :c AND id_tag = :o",
        c=charger_id,
        o=order_id,
    )
    assert txns == (1,)
    (settlements,) = await rows(
        database_url, "SELECT count(*) FROM settlements WHERE order_id = :o", o=order_id
    )
    assert settlements == (1,)
    payments = await rows(
        database_url, "SELECT status, amount FROM payments WHERE order_id = :o", o=order_id
    )
    assert len(payments) == 1 and payments[0][0] == "captured", payments
    captures = await rows(
        database_url,
        "SELECT amount FROM ledger_transfers WHERE order_id = :o AND kind = 'capture'",
        o=order_id,
    )
    assert captures == [(payments[0][1],)], (captures, payments)
    (receipts,) = await rows(
        database_url,
        "SELECT count(*) FROM receipts r JOIN payments p ON p.id = r.payment_id"
        " WHERE p.order_id = :o",
        o=order_id,
    )
    assert receipts == (1,)
    await assert_invariants(database_url)
    amount: int = payments[0][1]
    return amount


async def stopped(charger: Charger, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    charger.store.close()


async def test_an_order_remote_started_on_a_charges_on_b_and_is_captured_once(
    tmp_path: Path, pg_url: str, prefix: str
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix, **FAST) as (a, b):
        charger = await charger_on(b, tmp_path, "CP-RS1", "2.0.1")
        task = asyncio.create_task(charger.run())
        try:
            await ready(b, charger)
            station = charger.station
            assert a.ctx.registry.get("CP-RS1") is None  # the socket is on B only
            dan = await driver_on(a, "dan@example.org")
            order = await order_on(a, dan, "CP-RS1")
            station.plug(1, capacity_wh=60_000, soc=0.3)
            r = await a.http.post(f"/api/v1/orders/{order['id']}/remote-start", headers=dan)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "Accepted"

            async def started() -> bool:
                r = await a.http.get(f"/api/v1/orders/{order['id']}", headers=dan)
                return bool(r.json()["status"] == "started")

            await until(started, 15, "the order started (the charger's start, through B)")
            begin = station.meters[1].register_wh
            await until(lambda: station.meters[1].register_wh > begin + 10, 15, "energy")
            station.unplug(1)
            await until(lambda: station.store.queue_len() == 0, 15, "delivered to B")

            async def paid() -> bool:
                r = await a.http.get(f"/api/v1/orders/{order['id']}", headers=dan)
                return bool(r.json()["status"] == "paid")

            await until(paid, 15, "captured by the elected node")
            # the driver confirms on A as well (a second capture must be impossible)
            r = await a.http.get(f"/api/v1/orders/{order['id']}", headers=dan)
            r = await a.http.post(f"/api/v1/payments/{r.json()['payment_id']}/confirm", headers=dan)
            assert r.status_code == 200, r.text
        finally:
            await stopped(charger, task)
        amount = await counted_once(pg_url, order["id"], "CP-RS1")
        assert amount > 0
        wallet = (await a.http.get("/api/v1/me/wallet", headers=dan)).json()
        assert (wallet["balance"], wallet["held"]) == (FUNDS - amount, 0)


async def test_an_offline_qr_order_uploaded_on_a_while_the_charger_syncs_on_b_is_captured_once(
    tmp_path: Path, pg_url: str, prefix: str
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix, **FAST) as (a, b):
        charger = await charger_on(b, tmp_path, "CP-QR1", "1.6")
        task = asyncio.create_task(charger.run())
        try:
            await ready(b, charger)
            station = charger.station
            eve = await driver_on(a, "eve@example.org")
            order = await order_on(a, eve, "CP-QR1")
            qr_png = (await a.http.get(f"/api/v1/orders/{order['id']}/qr.png", headers=eve)).content

            charger.link.set_up(False)
            await until(lambda: not station.online, 5, "offline")
            station.plug(1, capacity_wh=60_000, soc=0.3)
            answer = charger.present_frame(qr_png)  # the camera sees the driver's phone
            assert answer["accepted"], answer
            await until(lambda: station.sessions[1].limit is not None, 15, "energy limit")
            station.unplug(1)
            (token,) = decode_qr(station.display.png())  # the driver scans the screen
            assert station.store.queue_len() > 0  # the transaction waits for the link

            # at once: the charger back on B delivering its queue, the upload on A
            charger.link.set_up(True)
            uploads = await asyncio.gather(
                *(
                    a.http.post("/api/v1/settlements", json={"token": token}, headers=eve)
                    for _ in range(3)
                )
            )
            assert {u.status_code for u in uploads} == {200}, [u.text for u in uploads]
            assert len({u.json()["payment_id"] for u in uploads}) == 1
            await until(lambda: station.online and station.store.queue_len() == 0, 15, "synced")
            assert b.ctx.registry.get("CP-QR1") is not None  # synced over OCPP to B

            async def paid() -> bool:
                r = await a.http.get(f"/api/v1/orders/{order['id']}", headers=eve)
                return bool(r.json()["status"] == "paid")

            await until(paid, 15, "captured by the elected node")
            detail = (await a.http.get(f"/api/v1/admin/orders/{order['id']}")).json()
            (settlement,) = detail["settlements"]
            assert sorted(settlement["sources"]) == ["ocpp", "signed"], settlement
        finally:
            await stopped(charger, task)
        amount = await counted_once(pg_url, order["id"], "CP-QR1")
        assert amount == uploads[0].json()["amount"]
        wallet = (await a.http.get("/api/v1/me/wallet", headers=eve)).json()
        assert (wallet["balance"], wallet["held"]) == (FUNDS - amount, 0)
