"""The CSMS killed with SIGKILL in the middle of an OCPP transaction burst, and while its
reaper releases the holds of unused orders; started again on the same data.

The chargers (bare websockets, :mod:`tests.faults.wire_charger`) send the unanswered message
again on their next connection, as a charger's durable queue does. Afterwards every message
the CSMS answered is stored once, every transaction is complete, every order is billed once
from its OCPP meter data, and every unused hold is released exactly once.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from csms.store.db import Database
from tests.faults import tally
from tests.faults.checks import SAMPLES, assert_invariants, check_transactions, ocpp_cost, rows
from tests.faults.live import ADMIN, CsmsProcess, add_charger, reconciliation, running_csms, sign_up
from tests.faults.wire_charger import WireCharger

pytestmark = pytest.mark.slow

PASSWORD = "wire-charger-pw"
HOLD = 2000


async def place_order(
    client: httpx.AsyncClient, auth: dict[str, str], charger_id: str, evse: int
) -> str:
    body = {"charger_id": charger_id, "evse_id": evse, "amount": HOLD}
    r = await client.post("/api/v1/orders", json=body, headers=auth)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def kill_on_answer(csms: CsmsProcess, after: int) -> tuple[list[asyncio.Task[None]], Any]:
    """A callback for the chargers: SIGKILL as the ``after``-th CALLRESULT comes in (the other
    chargers' CALLs are then in flight), and a task that starts the CSMS again."""
    count = [0]
    restarts: list[asyncio.Task[None]] = []

    def answered() -> None:
        count[0] += 1
        if count[0] == after:
            csms.kill()
            restarts.append(asyncio.create_task(csms.restart_after_kill()))

    return restarts, answered


async def test_sigkill_during_an_ocpp_transaction_burst(tmp_path: Path, database_url: str) -> None:
    rng = random.Random(1316)
    async with (
        running_csms(tmp_path / "csms", database_url, auto_capture_s=3600) as csms,
        httpx.AsyncClient(base_url=csms.base_url, timeout=20) as client,
    ):
        driver = await sign_up(client, "burst@example.org", 100_000)
        chargers: list[WireCharger] = []
        energy: dict[str, int] = {}  # order id -> Wh its transaction reports
        for n, version in enumerate(["1.6", "2.0.1"] * 3):
            charger_id = f"WIRE{n}"
            await add_charger(client, charger_id, PASSWORD)
            cp = WireCharger(csms.ws_url(charger_id), charger_id, PASSWORD, version)
            for evse in (1, 2):
                order_id = await place_order(client, driver, charger_id, evse)
                step = 100 + 10 * rng.randint(0, 30)
                energy[order_id] = step * (SAMPLES + 1)
                add = cp.transaction16 if version == "1.6" else cp.transaction201
                add(f"T{evse}", order_id, evse, meter=10_000 * evse, samples=SAMPLES, step=step)
            cp.data_transfer("Synced", json.dumps({"seq": 0}))
            chargers.append(cp)
        messages = sum(len(cp.queue) for cp in chargers)

        restarts, answered = kill_on_answer(csms, rng.randint(messages // 4, messages // 2))
        for cp in chargers:
            cp.on_answer = answered
        await asyncio.wait_for(asyncio.gather(*(cp.run() for cp in chargers)), 60)
        assert restarts and csms.kills == 1
        await restarts[0]
        lost = sum(cp.unanswered for cp in chargers)
        assert lost > 0  # CALLs were in flight at the kill
        tally.injected("SIGKILL during an OCPP transaction burst")
        tally.unanswered("SIGKILL during an OCPP transaction burst", lost)

        await check_transactions(database_url, chargers)
        await check_billed_once(csms, client, energy)
        assert not csms.errors_logged(), csms.errors_logged()


async def check_billed_once(
    csms: CsmsProcess, client: httpx.AsyncClient, energy: dict[str, int]
) -> None:
    """Every order billed once, from its OCPP meter data; money invariants; nothing stuck."""
    payments = await rows(csms.database_url, "SELECT order_id, amount, status FROM payments")
    assert sorted(p[0] for p in payments) == sorted(energy)
    for order_id, amount, status in payments:
        assert (amount, status) == (ocpp_cost(energy[order_id]), "pending"), order_id
    await assert_invariants(csms.database_url)
    report = await reconciliation(client)
    counts = report["counts"]
    assert counts["settled_by_ocpp_only"] == len(energy), counts
    assert counts["stuck_holds"] == 0 and counts["disagreements"] == 0, counts
    r = await client.get("/api/v1/admin/orders", params={"flagged": "true"}, headers=ADMIN)
    assert r.json() == [], r.text


async def test_sigkill_while_the_reaper_releases_holds(tmp_path: Path, database_url: str) -> None:
    """Unused orders expire after 2 s (+1 s leeway); once their charger has synced, the reaper
    (every 0.1 s) releases their holds; the CSMS is killed in the middle of that."""
    orders = 60
    settings = {"start_token_validity_s": 2, "token_leeway_s": 1, "reaper_interval_s": 0.1}
    async with (
        running_csms(tmp_path / "csms", database_url, **settings) as csms,
        httpx.AsyncClient(base_url=csms.base_url, timeout=20) as client,
    ):
        driver = await sign_up(client, "unused@example.org", orders * HOLD)
        await add_charger(client, "WIREREAP", PASSWORD)
        placed = [await place_order(client, driver, "WIREREAP", 1) for _ in range(orders)]
        last = await rows(database_url, "SELECT max(expires_at) FROM orders")
        expires = _aware(last[0][0])
        await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds() + 1.2))

        cp = WireCharger(csms.ws_url("WIREREAP"), "WIREREAP", PASSWORD, "1.6")
        cp.data_transfer("Synced", json.dumps({"seq": 0}))
        db = Database.connect(database_url)
        try:
            await cp.run()  # the reaper may release from now on
            released_at_kill = await kill_mid_release(csms, db, orders)
        finally:
            await db.dispose()
        tally.injected("SIGKILL while the reaper releases holds")
        await csms.restart_after_kill()
        for _ in range(100):
            statuses = dict(await rows(database_url, "SELECT id, status FROM orders"))
            if set(statuses.values()) == {"expired"}:
                break
            await asyncio.sleep(0.1)
        assert sorted(statuses) == sorted(placed) and set(statuses.values()) == {"expired"}
        releases = await rows(
            database_url, "SELECT idempotency_key FROM ledger_transfers WHERE kind = 'release'"
        )
        assert sorted(k for (k,) in releases) == sorted(f"release:{o}" for o in placed)
        wallet = (await client.get("/api/v1/me/wallet", headers=driver)).json()
        assert (wallet["balance"], wallet["held"]) == (orders * HOLD, 0)
        await assert_invariants(database_url)
        report = await reconciliation(client)
        assert report["counts"]["stuck_holds"] == 0, report["counts"]
        assert 0 < released_at_kill < orders, released_at_kill


async def kill_mid_release(csms: CsmsProcess, db: Database, orders: int) -> int:
    """SIGKILL as soon as the reaper has released some of the holds; how many it had."""
    from sqlalchemy import text

    async with db.engine.connect() as conn:
        for _ in range(2000):
            done = (
                await conn.execute(text("SELECT count(*) FROM orders WHERE status = 'expired'"))
            ).scalar_one()
            await conn.rollback()
            if done:
                csms.kill()
                return int(done)
            await asyncio.sleep(0.002)
    raise AssertionError("the reaper released nothing")


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
