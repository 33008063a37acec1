"""Two nodes that both believe they lead (the moment a hung leader wakes up after another took
over) run the reaper at once against one PostgreSQL database, each with its own connections:
every payment due for auto-capture is captured once, every unused hold released once, and the
ledger and the orders' money agree."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from csms.cluster.leader import Job, Leadership
from csms.payments.reaper import Reaper, ReapReport
from csms.store.db import Database
from tests.csms.conftest import pg_url
from tests.csms.payments.conftest import FUNDS, World, _empty_pg, world
from tests.csms.payments.invariants import assert_money_consistent

__all__ = ["pg_url", "world"]
pytestmark = pytest.mark.postgres

SETTLED, UNUSED = 12, 12
VALIDITY, LEEWAY = 900, 300


@pytest.fixture
async def db_url(pg_url: str) -> AsyncIterator[str]:
    """The world's database: PostgreSQL only (two nodes need a shared server)."""
    await _empty_pg(pg_url)
    yield pg_url


def reaping(reaper: Reaper, reports: list[ReapReport]) -> Callable[[], Coroutine[Any, Any, None]]:
    """A node's reaper loop, keeping what each pass did."""

    async def loop() -> None:
        while True:
            reports.append(await reaper.reap_once())
            await asyncio.sleep(0)

    return loop


async def test_two_leaders_capture_and_release_each_order_once(world: World) -> None:
    unused = [await world.order(amount=1000) for _ in range(UNUSED)]
    settled = []
    for n in range(SETTLED):
        order = await world.order(amount=2000, evse_id=1 + n % 2)
        await world.service.submit(
            world.settlement(order, wh=1000, txn=f"{n:06d}-split"), source="upload"
        )
        settled.append(order)
    world.clock.advance(VALIDITY + LEEWAY + 700)  # tokens expired, captures due (600 s)
    await world.synced()

    other = Database.connect(world.db.engine.url.render_as_string(hide_password=False))
    reports: dict[str, list[ReapReport]] = {"a": [], "b": []}
    nodes = []
    for name, db in (("a", world.db), ("b", other)):
        reaper = Reaper(db, settings=world.settings, clock=world.clock)
        jobs: list[Job] = [("payments-reaper", reaping(reaper, reports[name]))]
        nodes.append(Leadership(None, node_id=name, jobs=jobs, heartbeat_s=1, lease_s=2, retry_s=1))
    tasks = [asyncio.create_task(node.run()) for node in nodes]
    try:
        for _ in range(400):  # both lead, both reap, until the work is done
            captured = Counter(p for r in reports["a"] + reports["b"] for p in r.captured)
            released = Counter(o for r in reports["a"] + reports["b"] for o in r.released)
            if len(captured) == SETTLED and len(released) == UNUSED:
                break
            await asyncio.sleep(0.05)
        assert all(node.is_leader for node in nodes)
        await asyncio.sleep(0.3)  # more passes by both: nothing is done again
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await other.dispose()

    captured = Counter(p for r in reports["a"] + reports["b"] for p in r.captured)
    released = Counter(o for r in reports["a"] + reports["b"] for o in r.released)
    assert len(reports["a"]) > 1 and len(reports["b"]) > 1  # both ran, repeatedly
    assert set(captured.values()) == {1} and len(captured) == SETTLED
    assert set(released.values()) == {1}
    assert sorted(released) == sorted(o.id for o in unused)
    for order in settled:
        (payment,) = await world.payments(order)
        assert payment.status == "captured"
    assert {(await world.reload(o)).status for o in unused} == {"expired"}
    assert await world.available() == FUNDS - SETTLED * 135  # 1 kWh * 1.20 + 0.5 h * 0.30
    await assert_money_consistent(world.db)  # (the world checks the ledger when it closes)
