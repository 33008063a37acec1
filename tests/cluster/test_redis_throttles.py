"""The throttles counted in Redis hold exactly when the in-process ones do, and two nodes (two
Redis clients) count into one budget.

Random sequences of log-in / password attempts on a manual clock are run against the
in-process throttle and against the shared one; every check must give the same answer (let in,
or held with the same Retry-After)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from redis.asyncio import Redis

from csms.drivers.errors import TooManyAttempts
from csms.drivers.throttle import LocalLogins, LoginThrottle, SharedLoginThrottle
from csms.password_throttle import (
    LocalPasswordGuard,
    PasswordThrottle,
    PasswordThrottled,
    SharedPasswordThrottle,
)
from tests.cluster.conftest import REDIS_URL


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.25

    def __call__(self) -> float:
        return self.now


async def _login_answer(guard: Any, email: str, client: str, known: bool) -> int:
    try:
        await guard.check(email, client, known_device=known)
    except TooManyAttempts as exc:
        return int(exc.retry_after_s)
    return 0


async def _password_answer(guard: Any, charger: str, client: str | None) -> int:
    try:
        await guard.check(charger, client)
    except PasswordThrottled as exc:
        return exc.retry_after_s
    return 0


@pytest.mark.parametrize("seed", range(4))
async def test_shared_login_throttle_answers_as_the_in_process_one(
    redis: Redis, prefix: str, seed: int
) -> None:
    clock = ManualClock()
    options = {"max_failures": 3, "lockout_s": 30.0, "window_s": 120.0, "clock": clock}
    local = LocalLogins(LoginThrottle(**options))  # type: ignore[arg-type]
    shared = SharedLoginThrottle(redis, prefix=prefix, **options)  # type: ignore[arg-type]
    rng = random.Random(seed)
    held = 0
    for _ in range(300):
        email = rng.choice(["a@x.org", "B@x.org ", "c@x.org"])
        address = rng.choice(["10.0.0.1", "10.0.0.2", "10.0.0.3"])
        known = rng.random() < 0.2
        answer = await _login_answer(local, email, address, known)
        assert await _login_answer(shared, email, address, known) == answer
        held += answer > 0
        if answer == 0:
            if rng.random() < 0.85:
                await local.failed(email, address)
                await shared.failed(email, address)
            else:
                await local.succeeded(email, address)
                await shared.succeeded(email, address)
        clock.now += rng.choice([0.5, 1, 3, 10, 40])
    assert held > 5  # the sequences do reach the limits


@pytest.mark.parametrize("seed", range(4))
async def test_shared_password_throttle_answers_as_the_in_process_one(
    redis: Redis, prefix: str, seed: int
) -> None:
    clock = ManualClock()
    options = {"max_failures": 2, "lockout_s": 8.0, "window_s": 60.0, "clock": clock}
    local = LocalPasswordGuard(PasswordThrottle(client_factor=2, charger_factor=2, **options))  # type: ignore[arg-type]
    shared = SharedPasswordThrottle(
        redis,
        prefix=prefix,
        client_factor=2,
        charger_factor=2,
        **options,  # type: ignore[arg-type]
    )
    rng = random.Random(seed)
    held = 0
    for _ in range(300):
        charger = rng.choice(["CP-1", "CP-2", "CP-3", "CP-4"])
        address = rng.choice(["10.0.0.1", "10.0.0.2", None])
        answer = await _password_answer(local, charger, address)
        assert await _password_answer(shared, charger, address) == answer
        held += answer > 0
        if answer == 0:
            if rng.random() < 0.8:
                await local.failed(charger, address)
                await shared.failed(charger, address)
            else:
                await local.succeeded(charger, address)
                await shared.succeeded(charger, address)
        clock.now += rng.choice([0.25, 1, 2, 5, 15, 70])
    assert held > 5


async def test_two_nodes_share_one_budget(redis: Redis, prefix: str) -> None:
    other = Redis.from_url(REDIS_URL)  # the second node's own connection
    clock = ManualClock()
    try:
        node_a = SharedPasswordThrottle(
            redis, prefix=prefix, max_failures=3, lockout_s=10, clock=clock
        )
        node_b = SharedPasswordThrottle(
            other, prefix=prefix, max_failures=3, lockout_s=10, clock=clock
        )
        await node_a.failed("CP-9", "10.1.1.1")
        await node_b.failed("CP-9", "10.1.1.1")
        await node_a.check("CP-9", "10.1.1.1")  # two of three: still let in
        await node_b.failed("CP-9", "10.1.1.1")
        for node in (node_a, node_b):
            with pytest.raises(PasswordThrottled) as held:
                await node.check("CP-9", "10.1.1.1")
            assert held.value.retry_after_s == 10
        clock.now += 10.5
        await node_a.check("CP-9", "10.1.1.1")
    finally:
        await other.aclose()


async def test_without_redis_a_node_counts_in_its_own_memory() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    clock = ManualClock()
    guard = SharedLoginThrottle(
        dead, prefix="qrtest-dead", max_failures=2, lockout_s=30, clock=clock
    )
    await guard.failed("d@x.org", "10.2.2.2")
    await guard.failed("d@x.org", "10.2.2.2")
    with pytest.raises(TooManyAttempts):
        await guard.check("d@x.org", "10.2.2.2")
    await dead.aclose()
