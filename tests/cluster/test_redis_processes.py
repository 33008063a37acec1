"""Two real ``qrcharge csms`` processes on one PostgreSQL and the real Redis: an operator
command through one reaches the charger on the other, and a node killed with SIGKILL lets go
of its chargers within the presence TTL (they reconnect to the other node and work there)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from ocpp.v16 import call as call16
from redis.asyncio import Redis

from tests.cluster.conftest import REDIS_URL
from tests.cluster.test_redis_cluster import until
from tests.csms.clients import Client16, connect
from tests.csms.conftest import _reset_pg, basic_auth, pg_url
from tests.faults.live import ADMIN, CsmsProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
TTL_S = 2.0
__all__ = ["pg_url"]


@pytest.fixture
async def nodes(tmp_path: Path, pg_url: str) -> AsyncIterator[tuple[CsmsProcess, CsmsProcess, str]]:
    await _reset_pg(pg_url)
    prefix = f"qrtest-{uuid.uuid4().hex[:10]}"
    settings = {"redis_url": REDIS_URL, "redis_prefix": prefix, "presence_ttl_s": TTL_S}
    data = tmp_path / "data"  # one key directory for both, as a shared volume would be
    a = CsmsProcess(data, pg_url, {**settings, "node_id": "proc-a"})
    b = CsmsProcess(data, pg_url, {**settings, "node_id": "proc-b"})
    await a.start()
    await b.start()
    try:
        yield a, b, prefix
    finally:
        await a.stop()
        await b.stop()
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        assert a.errors_logged() == [] and b.errors_logged() == [], a.log_tail() + b.log_tail()


async def test_command_across_processes_and_a_killed_node_lets_go_within_the_ttl(
    nodes: tuple[CsmsProcess, CsmsProcess, str],
) -> None:
    a, b, prefix = nodes
    redis = Redis.from_url(REDIS_URL)
    async with (
        httpx.AsyncClient(base_url=a.base_url, headers=ADMIN, timeout=10) as api_a,
        httpx.AsyncClient(base_url=b.base_url, headers=ADMIN, timeout=10) as api_b,
    ):
        r = await api_a.post(
            "/api/v1/admin/chargers", json={"id": "CP-P1", "password": "x" * 16, "evses": 1}
        )
        assert r.status_code == 201, r.text
        auth = basic_auth("CP-P1", "x" * 16)
        boot = call16.BootNotification(charge_point_model="M", charge_point_vendor="V")
        async with connect(a.ws_url("CP-P1"), Client16, "ocpp1.6", auth) as cp:
            await cp.call(boot)
            r = await api_b.post(
                "/api/v1/admin/chargers/CP-P1/commands/Reset", json={"type": "Soft"}
            )
            assert r.status_code == 200, r.text
            assert r.json()["response"] == {"status": "Accepted"}
            assert cp.received == [("Reset", {"type": "Soft"})]
            assert (await api_b.get("/api/v1/admin/chargers/CP-P1")).json()["connected"] is True

            a.kill()  # no goodbye: the claim lives until its TTL runs out
            killed = time.monotonic()

            async def released() -> bool:
                return await redis.get(f"{prefix}:presence:CP-P1") is None

            await until(released, timeout_s=TTL_S + 2)
            assert time.monotonic() - killed <= TTL_S + 1
            r = await api_b.get("/api/v1/admin/chargers/CP-P1")
            assert r.json()["connected"] is False
            r = await api_b.post(
                "/api/v1/admin/chargers/CP-P1/commands/Reset", json={"type": "Soft"}
            )
            assert r.status_code == 409, r.text
        # the charger comes back on B and is served there
        async with connect(b.ws_url("CP-P1"), Client16, "ocpp1.6", auth) as cp:
            await cp.call(boot)
            assert await redis.get(f"{prefix}:presence:CP-P1") == b"proc-b"
            r = await api_b.post("/api/v1/admin/chargers/CP-P1/commands/GetConfiguration", json={})
            assert r.status_code == 200, r.text
        await asyncio.sleep(0)
    await redis.aclose()
