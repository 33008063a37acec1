"""The charger-password checks the nodes share through Redis: a check made on one node spares
argon2 on every other node (and after a restart), and never lets a wrong or a replaced password
in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from ocpp.v16 import call as call16
from redis.asyncio import Redis

from csms.passwords import PasswordVerifier, SharedVerifications, cache_secret, hash_password
from tests.cluster.test_redis_cluster import two_nodes
from tests.csms.clients import Client16, connect
from tests.csms.conftest import PASSWORD, LiveCsms, basic_auth, pg_url

__all__ = ["pg_url"]  # the session database fixture, used here


@contextlib.asynccontextmanager
async def _booted(node: LiveCsms, charger_id: str, password: str) -> AsyncIterator[Client16]:
    auth = basic_auth(charger_id, password)
    async with connect(node.ws_url(charger_id), Client16, "ocpp1.6", auth) as cp:
        await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        yield cp


async def _refused(node: LiveCsms, charger_id: str, password: str) -> bool:
    try:
        async with _booted(node, charger_id, password):
            return False
    except Exception as exc:  # the handshake's 401, as the websockets client raises it
        return "401" in str(exc)


async def test_a_check_on_one_node_spares_argon2_on_the_other_and_a_new_password_misses(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix) as (a, b):
        await a.add_charger("CP-PW1")
        async with _booted(a, "CP-PW1", PASSWORD):
            pass
        assert a.ctx.passwords.verifications == 1
        assert await redis.get(f"{prefix}:chargerpw:CP-PW1") is not None
        async with _booted(b, "CP-PW1", PASSWORD):
            pass
        assert b.ctx.passwords.verifications == 0  # the check A made, found in Redis

        assert await _refused(b, "CP-PW1", "a-wrong-password")  # a cached charger: still checked
        assert b.ctx.passwords.verifications == 1

        new = "a-new-password-2"
        r = await a.http.patch("/api/v1/admin/chargers/CP-PW1", json={"password": new})
        assert r.status_code == 200, r.text
        # A's memory and the shared entry both name the old stored hash: the old password
        # misses everywhere and argon2 refuses it against the new hash
        assert await _refused(a, "CP-PW1", PASSWORD)
        assert await _refused(b, "CP-PW1", PASSWORD)
        async with _booted(b, "CP-PW1", new):
            pass
        async with _booted(a, "CP-PW1", new):
            pass
        assert (a.ctx.passwords.verifications, b.ctx.passwords.verifications) == (2, 3)


async def test_a_forged_entry_lets_no_wrong_password_in(redis: Redis, prefix: str) -> None:
    stored = hash_password("right-password")
    secret = cache_secret(b"s" * 32)
    node = PasswordVerifier(shared=SharedVerifications(redis, prefix=prefix, secret=secret))
    # whoever can write Redis but lacks the secret: the digest of the wrong password under
    # another key, and raw bytes
    other = SharedVerifications(redis, prefix=prefix, secret=cache_secret(b"x" * 32))
    for forged in (other.digest("CP", "wrong", stored), b"\x00" * 32):
        await redis.set(f"{prefix}:chargerpw:CP", forged)
        assert not await node.verify("CP", "wrong", stored)
    assert node.verifications == 2
    assert await node.verify("CP", "right-password", stored)
    restarted = PasswordVerifier(shared=SharedVerifications(redis, prefix=prefix, secret=secret))
    assert await restarted.verify("CP", "right-password", stored)
    assert restarted.verifications == 0  # a fresh process: found in Redis


async def test_redis_down_falls_back_to_argon2() -> None:
    gone = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        shared = SharedVerifications(gone, prefix="p", secret=cache_secret(b"s" * 32))
        node = PasswordVerifier(shared=shared)
        stored = hash_password("right-password")
        assert await node.verify("CP", "right-password", stored)
        assert not await node.verify("CP", "wrong", stored)
        assert node.verifications == 2 and shared.hits == 0
    finally:
        await gone.aclose()
