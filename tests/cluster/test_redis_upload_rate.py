"""The settlement upload rate counted in Redis: the in-process rules, one budget for all nodes.

Two :class:`SharedUploadRate` on two Redis clients stand for two nodes (or two workers); a
manual clock in epoch seconds moves time instead of sleeping. Redis going away leaves each
node counting in its own memory, never refusing an upload the limits allow."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from csms.upload_rate import SharedUploadRate, UploadRate, UploadsTooFrequent
from tests.cluster.conftest import REDIS_URL
from tests.cluster.test_redis_cluster import two_nodes
from tests.csms.conftest import pg_url

__all__ = ["pg_url"]  # the session database fixture, used here


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.25

    def __call__(self) -> float:
        return self.now


async def _wait(gate: Any, user_id: int, client: str | None) -> int:
    """0 when the upload was admitted (and counted), else its Retry-After."""
    try:
        result = gate.admit(user_id, client)
        if result is not None:
            await result
    except UploadsTooFrequent as exc:
        return exc.retry_after_s
    return 0


async def test_a_driver_at_the_limit_on_one_node_is_refused_on_the_other(
    redis: Redis,
    prefix: str,
) -> None:
    other = Redis.from_url(REDIS_URL)  # the second node's own connection
    clock = ManualClock()
    try:
        node_a = SharedUploadRate(redis, prefix=prefix, per_driver=3, per_client=100, clock=clock)
        node_b = SharedUploadRate(other, prefix=prefix, per_driver=3, per_client=100, clock=clock)
        await node_a.admit(7, "10.0.0.1")
        await node_b.admit(7, "10.0.0.2")
        await node_a.admit(7, "10.0.0.1")
        for node in (node_b, node_a):
            with pytest.raises(UploadsTooFrequent) as held:
                await node.admit(7, "10.0.0.3")
            assert held.value.retry_after_s == 20  # 3 a minute: a token every 20 s
        await node_b.admit(8, "10.0.0.3")  # another driver has its own budget
        clock.now += 15
        assert await _wait(node_b, 7, "10.0.0.1") == 5  # the refusals spent nothing
        clock.now += 5  # one token back, shared: one more upload on either node, not two
        await node_b.admit(7, "10.0.0.1")
        assert await _wait(node_a, 7, "10.0.0.1") == 20
        clock.now += 3600  # a long pause fills the bucket to its size, no further
        for _ in range(3):
            await node_a.admit(7, "10.0.0.1")
        assert await _wait(node_b, 7, "10.0.0.1") == 20
    finally:
        await other.aclose()


async def test_the_address_bucket_is_shared_by_drivers_and_nodes(
    redis: Redis,
    prefix: str,
) -> None:
    clock = ManualClock()
    node_a = SharedUploadRate(redis, prefix=prefix, per_driver=10, per_client=2, clock=clock)
    node_b = SharedUploadRate(redis, prefix=prefix, per_driver=10, per_client=2, clock=clock)
    await node_a.admit(1, "10.9.9.9")
    await node_b.admit(2, "10.9.9.9")
    with pytest.raises(UploadsTooFrequent) as held:
        await node_a.admit(3, "10.9.9.9")
    assert held.value.retry_after_s == 30
    await node_a.admit(3, "10.9.9.8")  # driver 3 spent nothing in the refused attempt
    await node_b.admit(3, None)  # no address known: the driver's bucket alone
    clock.now += 31
    await node_b.admit(4, "10.9.9.9")


async def test_buckets_expire_once_full_again(redis: Redis, prefix: str) -> None:
    rate = SharedUploadRate(redis, prefix=prefix, per_driver=5, per_client=5)
    await rate.admit(42, "10.3.3.3")
    keys = sorted([k.decode() async for k in redis.scan_iter(match=f"{prefix}:*")])
    assert keys == [f"{prefix}:uploads:client:10.3.3.3", f"{prefix}:uploads:driver:42"]
    for key in keys:
        assert 60_000 <= await redis.pttl(key) <= 61_000


@pytest.mark.parametrize("seed", range(3))
async def test_shared_rate_answers_as_the_in_process_one(
    redis: Redis, prefix: str, seed: int
) -> None:
    clock = ManualClock()
    local = UploadRate(per_driver=4, per_client=6, clock=clock)
    shared = SharedUploadRate(redis, prefix=prefix, per_driver=4, per_client=6, clock=clock)
    rng = random.Random(seed)
    held = 0
    for _ in range(300):
        driver = rng.choice([1, 2, 3])
        address = rng.choice(["10.0.0.1", "10.0.0.2", None])
        answer = await _wait(local, driver, address)
        assert await _wait(shared, driver, address) == answer
        held += answer > 0
        clock.now += rng.choice([0.1, 0.3, 1, 2, 4, 30])
    assert held > 20  # the sequences do reach the limits


class FlakyRedis(Redis):
    """A Redis client whose scripts fail while ``down``, as when the server is unreachable."""

    down = False

    async def evalsha(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.down:
            raise RedisConnectionError("Redis is down")
        return await super().evalsha(*args, **kwargs)


async def test_without_redis_a_node_counts_in_its_own_memory(
    redis: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyRedis.from_url(REDIS_URL)
    clock = ManualClock()
    rate = SharedUploadRate(  # 15 a minute: a token every 4 s
        flaky, prefix=prefix, per_driver=15, per_client=100, retry_s=5, clock=clock
    )
    try:
        for _ in range(10):  # counted in Redis
            await rate.admit(5, "10.4.4.4")
        flaky.down = True
        with caplog.at_level(logging.WARNING, logger="csms.upload_rate"):
            for _ in range(15):  # Redis down: not refused, counted here from a full bucket
                await rate.admit(5, "10.4.4.4")
            with pytest.raises(UploadsTooFrequent) as held:  # the local limit still holds
                await rate.admit(5, "10.4.4.4")
            assert held.value.retry_after_s == 4
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
        flaky.down = False
        clock.now += 2  # within retry_s Redis is not asked: still the local count
        assert await _wait(rate, 5, "10.4.4.4") == 2
        clock.now += 3  # then Redis again: its 5 tokens left, and 5 s of refill
        for _ in range(6):
            await rate.admit(5, "10.4.4.4")
        assert await _wait(rate, 5, "10.4.4.4") == 3
    finally:
        await flaky.aclose()


async def test_an_unreachable_server_never_refuses_an_upload() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    rate = SharedUploadRate(dead, prefix="qrtest-dead", per_driver=2, per_client=2)
    try:
        await rate.admit(1, "10.5.5.5")
        await rate.admit(1, "10.5.5.5")
        with pytest.raises(UploadsTooFrequent):
            await rate.admit(1, "10.5.5.5")
    finally:
        await dead.aclose()


@pytest.mark.postgres
async def test_two_nodes_over_http_share_the_drivers_rate(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    limits = {"upload_rate_per_driver": 2, "upload_rate_per_client": 1000}
    async with two_nodes(tmp_path, pg_url, prefix, **limits) as (a, b):
        headers = await a.driver("uploader@example.org")
        answers = []
        for node in (a, b, a, b):
            r = await node.http.post(
                "/api/v1/settlements", json={"token": "not-a-settlement"}, headers=headers
            )
            answers.append((r.status_code, int(r.headers.get("Retry-After", 0))))
        # two judged (and refused as unreadable) in all, not two on each node; a token
        # every 30 s (less the moments the requests took)
        assert [code for code, _ in answers] == [422, 422, 429, 429]
        assert all(25 <= wait <= 30 for _, wait in answers[2:])
