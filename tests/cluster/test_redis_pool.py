"""A connection burst against the real Redis (127.0.0.1:6379) through a small pool: every
presence claim and release, password-cache read and throttle check gets its answer from
Redis; none fails with ``Too many connections`` and none falls back to this process.

The node's client (:func:`csms.cluster.client.redis_client`) waits for a free socket. The
same burst through redis-py's default pool of the same size fails: that test shows the burst
is big enough to tell the two apart.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio import ConnectionPool, Redis

from csms.cluster.client import redis_client
from csms.cluster.node import ClusterNode
from csms.commands import ConnectionRegistry, LocalDispatcher
from csms.password_throttle import SharedPasswordThrottle
from csms.passwords import SharedVerifications
from csms.protocol import commands as ocpp_commands
from tests.cluster.conftest import REDIS_URL

POOL = 4  # sockets: the burst is 100 times that
BURST = 400


def _node(redis: Redis, prefix: str) -> ClusterNode:
    registry = ConnectionRegistry()
    return ClusterNode(
        redis,
        prefix=prefix,
        node_id="n1",
        presence_ttl_s=30,
        registry=registry,
        local=LocalDispatcher(registry, timeout_s=5, codec=ocpp_commands),
        call_timeout_s=5,
    )


def _failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_burst_of_presence_claims_and_releases_waits_for_the_pool(
    prefix: str, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis_client(REDIS_URL, max_connections=POOL, wait_s=10)
    node = _node(client, prefix)
    ids = [f"CP{i:04d}" for i in range(BURST)]
    try:
        with caplog.at_level(logging.WARNING):
            await asyncio.gather(*(node.opened(c) for c in ids))
            held = await redis.mget([node.presence.key(c) for c in ids])
            assert held == [b"n1"] * BURST
            released = await asyncio.gather(*(node.closed(c) for c in ids))
        assert released == [True] * BURST
        assert await redis.exists(*(node.presence.key(c) for c in ids)) == 0
        assert _failures(caplog) == []
        assert len(client.connection_pool._in_use_connections) == 0  # type: ignore[attr-defined]
    finally:
        await client.aclose()


async def test_a_burst_of_password_checks_never_counts_here_nor_misses_the_cache(
    prefix: str, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis_client(REDIS_URL, max_connections=POOL, wait_s=10)
    throttle = SharedPasswordThrottle(client, prefix=prefix, max_failures=5, lockout_s=60)
    cache = SharedVerifications(client, prefix=prefix, secret=b"k" * 32)
    ids = [f"CP{i:04d}" for i in range(BURST)]
    digests = {c: cache.digest(c, "pw", "hash") for c in ids}

    async def handshake(charger_id: str) -> bool:
        await throttle.check(charger_id, "10.0.0.1")
        seen = await cache.seen(charger_id, digests[charger_id])
        await throttle.succeeded(charger_id, "10.0.0.1")
        return seen

    try:
        await asyncio.gather(*(cache.remember(c, digests[c]) for c in ids))
        with caplog.at_level(logging.DEBUG, logger="csms"):
            seen = await asyncio.gather(*(handshake(c) for c in ids))
        assert seen == [True] * BURST  # no miss: a miss is an argon2 check per charger
        assert cache.hits == BURST
        assert _failures(caplog) == []
        assert not [r for r in caplog.records if "unavailable" in r.getMessage()]
    finally:
        await client.aclose()


async def test_the_same_burst_through_the_default_pool_fails(
    prefix: str, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """redis-py's default pool of the same size (what the node used before)."""
    client = Redis.from_pool(ConnectionPool.from_url(REDIS_URL, max_connections=POOL))
    node = _node(client, prefix)
    try:
        with caplog.at_level(logging.WARNING):
            await asyncio.gather(*(node.opened(f"CP{i:04d}") for i in range(BURST)))
        failed = [m for m in _failures(caplog) if "Too many connections" in m]
        assert failed, "the burst no longer exhausts a default pool: the tests above prove less"
    finally:
        await client.aclose()
