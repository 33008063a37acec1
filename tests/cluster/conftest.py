"""Fixtures of the cluster tests: the real Redis (127.0.0.1:6379) under a key prefix of the
test's own, so tests (and parallel workers) never see each other's keys."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def new_prefix() -> str:
    """A Redis key prefix no other test uses."""
    return f"qrtest-{uuid.uuid4().hex[:10]}"


async def drop_keys(client: Redis, prefix: str) -> None:
    """Deletes every key under ``prefix`` (what a test, or the nodes it ran, left)."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture
def prefix() -> str:
    return new_prefix()


@pytest.fixture
async def redis(prefix: str) -> AsyncIterator[Redis]:
    """A client of the real Redis; the test's keys (``prefix:*``) are deleted afterwards."""
    client = Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        await drop_keys(client, prefix)
        await client.aclose()
