"""Two CSMS nodes on one PostgreSQL and the real Redis (127.0.0.1:6379): presence, command
routing, one session per charger, shared throttles and invalidations.

Each node is a whole app served by uvicorn on its own port, with its own context, database
pool and Redis connections; they share only PostgreSQL, Redis and the key directory, as two
machines would. Every test has its own Redis key prefix, so tests (and parallel workers) never
see each other's keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16
from redis.asyncio import Redis

from csms.store import chargers as charger_store
from tests.cluster.conftest import REDIS_URL
from tests.csms.clients import Client16, connect
from tests.csms.conftest import LiveCsms, _reset_pg, basic_auth, make_settings, pg_url, serve

pytestmark = pytest.mark.postgres
TTL_S = 1.5
__all__ = ["pg_url"]  # the session database fixture, used here


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def two_nodes(
    tmp_path: Path, pg_url: str, prefix: str, **overrides: Any
) -> AsyncIterator[tuple[LiveCsms, LiveCsms]]:
    await _reset_pg(pg_url)
    common = {
        "database_url": pg_url,
        "redis_url": REDIS_URL,
        "redis_prefix": prefix,
        "presence_ttl_s": TTL_S,
        **overrides,
    }
    async with (
        serve(make_settings(tmp_path, node_id="node-a", **common)) as a,
        serve(make_settings(tmp_path, node_id="node-b", **common)) as b,
    ):
        yield a, b


@contextlib.asynccontextmanager
async def charger_on(node: LiveCsms, charger_id: str) -> AsyncIterator[Client16]:
    async with connect(node.ws_url(charger_id), Client16, "ocpp1.6", basic_auth(charger_id)) as cp:
        await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        yield cp


async def test_command_through_b_reaches_the_charger_on_a(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix) as (a, b):
        await a.add_charger("CP-X1")
        await b.http.patch("/api/v1/admin/chargers/CP-X1", json={"registration": "Accepted"})
        async with charger_on(a, "CP-X1") as cp:
            assert await redis.get(f"{prefix}:presence:CP-X1") == b"node-a"
            assert not b.ctx.registry.get("CP-X1")  # the socket is on A only
            r = await b.http.post(
                "/api/v1/admin/chargers/CP-X1/commands/GetConfiguration",
                json={"key": ["HeartbeatInterval"]},
            )
            assert r.status_code == 200, r.text
            assert r.json()["response"]["configurationKey"][0]["value"] == "120"
            assert ("GetConfiguration", {"key": ["HeartbeatInterval"]}) in cp.received
            r = await b.http.post(
                "/api/v1/admin/chargers/CP-X1/commands/RemoteStartTransaction",
                json={"idTag": "TAG-1", "connectorId": 1},
            )
            assert r.status_code == 200, r.text
            assert r.json()["response"]["status"] == "Accepted"
            # a version-neutral command (SetIdentificationSecret) and its Outcome, through B
            r = await b.http.put("/api/v1/admin/chargers/CP-X1/presence-secret", json={})
            assert r.status_code == 200, r.text
            assert r.json()["installed"] is True
            # B's operator API sees the charger online, as A does
            for node in (a, b):
                r = await node.http.get("/api/v1/admin/chargers/CP-X1")
                assert r.json()["connected"] is True and r.json()["online"] is True
                r = await node.http.get("/api/v1/admin/chargers", params={"connected": "true"})
                assert [c["id"] for c in r.json()] == ["CP-X1"]
        # gone: the claim is deleted at once, and B says "not connected" (409) as A would
        await until(lambda: _absent(redis, f"{prefix}:presence:CP-X1"))
        r = await b.http.post("/api/v1/admin/chargers/CP-X1/commands/Reset", json={"type": "Soft"})
        assert r.status_code == 409, r.text


async def _absent(redis: Redis, key: str) -> bool:
    return await redis.get(key) is None


async def test_a_callerror_and_a_timeout_come_back_as_on_the_holding_node(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix, ocpp_call_timeout_s=1) as (a, b):
        await a.add_charger("CP-X2")
        async with charger_on(a, "CP-X2") as cp:
            # this charger has no ChangeAvailability handler: its CALLERROR, as A would give it
            r = await b.http.post(
                "/api/v1/admin/chargers/CP-X2/commands/ChangeAvailability",
                json={"connectorId": 0, "type": "Inoperative"},
            )
            assert r.status_code == 502, r.text
            assert r.json()["error_code"] == "NotImplemented"

            async def never(**kw: Any) -> Any:
                await asyncio.sleep(30)

            cp.route_map["Reset"]["_on_action"] = never
            r = await b.http.post(
                "/api/v1/admin/chargers/CP-X2/commands/Reset", json={"type": "Soft"}
            )
            assert r.status_code == 504, r.text


async def test_the_same_charger_on_b_closes_its_connection_on_a(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix) as (a, b):
        await a.add_charger("CP-X3")
        async with charger_on(a, "CP-X3") as first, charger_on(b, "CP-X3"):
            await until(_holds(a, "CP-X3", False))
            await first._connection.wait_closed()  # A closed the older socket
            assert b.ctx.registry.get("CP-X3") is not None
            assert await redis.get(f"{prefix}:presence:CP-X3") == b"node-b"
            # A's goodbye did not delete B's claim, and the refresher keeps it; nor did it mark
            # the charger's row offline
            await asyncio.sleep(TTL_S)
            assert await redis.get(f"{prefix}:presence:CP-X3") == b"node-b"
            async with b.ctx.db.session() as session:
                row = await charger_store.get_charger(session, "CP-X3")
            assert row is not None and row.online is True


def _holds(node: LiveCsms, charger_id: str, held: bool) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (node.ctx.registry.get(charger_id) is not None) is held

    return check


async def test_presence_of_a_node_that_stops_refreshing_expires_within_the_ttl(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix) as (a, b):
        await a.add_charger("CP-X4")
        async with charger_on(a, "CP-X4"):
            assert a.ctx.cluster is not None
            await a.ctx.cluster.stop()  # as if A died: no refresh, no goodbye, no answers
            started = time.monotonic()
            await until(lambda: _absent(redis, f"{prefix}:presence:CP-X4"), timeout_s=TTL_S + 1)
            assert time.monotonic() - started <= TTL_S + 0.5
            r = await b.http.get("/api/v1/admin/chargers/CP-X4")
            assert r.json()["connected"] is False and r.json()["online"] is False


async def test_wrong_charger_passwords_count_across_nodes(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    import websockets

    async with two_nodes(tmp_path, pg_url, prefix, charger_auth_max_failures=2) as (a, b):
        await a.add_charger("CP-X5")
        statuses = []
        for node in (a, b, a):
            try:
                async with websockets.connect(
                    node.ws_url("CP-X5"),
                    subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                    additional_headers=basic_auth("CP-X5", "wrong-password"),
                    open_timeout=5,
                ):
                    statuses.append(101)
            except websockets.InvalidStatus as exc:
                statuses.append(exc.response.status_code)
        # one wrong on A, one on B: the pair is held, so the third (on A) is 429
        assert statuses == [401, 401, 429]


async def test_driver_log_in_failures_count_across_nodes(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix, login_max_failures=2) as (a, b):
        r = await a.http.post(
            "/api/v1/users", json={"email": "t@example.org", "password": "long-pw-1"}
        )
        assert r.status_code == 201, r.text
        wrong = {"username": "t@example.org", "password": "nope-nope"}
        assert (await a.http.post("/api/v1/token", data=wrong)).status_code == 401
        assert (await b.http.post("/api/v1/token", data=wrong)).status_code == 401
        r = await a.http.post("/api/v1/token", data={**wrong, "password": "long-pw-1"})
        assert r.status_code == 429, r.text
        assert int(r.headers["Retry-After"]) > 0


async def test_sign_out_everywhere_on_a_refuses_the_token_on_b(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix) as (a, b):
        bearer = await a.driver("s@example.org")
        assert (await b.http.get("/api/v1/me", headers=bearer)).status_code == 200
        assert (await a.http.post("/api/v1/me/sign-out", headers=bearer)).status_code == 204
        assert (await b.http.get("/api/v1/me", headers=bearer)).status_code == 401


async def test_a_password_change_on_a_is_the_password_on_b(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix) as (a, b):
        await a.add_charger("CP-X6")
        async with charger_on(b, "CP-X6"):  # B verified (and cached) the old password
            pass
        r = await a.http.patch("/api/v1/admin/chargers/CP-X6", json={"password": "new-password-6"})
        assert r.status_code == 200, r.text
        import websockets

        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                b.ws_url("CP-X6"),
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=basic_auth("CP-X6"),
                open_timeout=5,
            ):
                pass
        assert refused.value.response.status_code == 401
        async with connect(
            b.ws_url("CP-X6"), Client16, "ocpp1.6", basic_auth("CP-X6", "new-password-6")
        ):
            pass


async def test_registration_change_on_b_reaches_the_connection_on_a(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix) as (a, b):
        await a.add_charger("CP-X7")
        await a.http.patch("/api/v1/admin/chargers/CP-X7", json={"registration": "Accepted"})
        async with charger_on(a, "CP-X7"):
            link = a.ctx.registry.get("CP-X7")
            assert link is not None and link.accepted
            r = await b.http.patch("/api/v1/admin/chargers/CP-X7", json={"registration": "Pending"})
            assert r.status_code == 200, r.text
            await until(_accepted(a, "CP-X7", False))
            # deleting on B closes the socket on A
            assert (await b.http.delete("/api/v1/admin/chargers/CP-X7")).status_code == 204
            await until(_holds(a, "CP-X7", False))


def _accepted(node: LiveCsms, charger_id: str, accepted: bool) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        link = node.ctx.registry.get(charger_id)
        return link is not None and link.accepted is accepted

    return check


async def test_key_rotation_on_a_is_published_by_b_and_pushed_to_its_chargers(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix) as (a, b):
        await a.add_charger("CP-X11")
        await a.http.patch("/api/v1/admin/chargers/CP-X11", json={"registration": "Accepted"})
        before = {k["kid"] for k in (await b.http.get("/.well-known/jwks.json")).json()["keys"]}
        async with charger_on(b, "CP-X11") as cp:
            _drain(cp.data_transfers)  # what it was sent at boot
            r = await a.http.post("/api/v1/admin/keys/rotate")
            assert r.status_code == 200, r.text
            kid = r.json()["kid"]
            assert kid not in before
            pushed = await asyncio.wait_for(cp.data_transfers.get(), 5)  # from B, told by A
            assert pushed["message_id"] == "TrustedKeys", pushed

        async def b_publishes() -> bool:
            r = await b.http.get("/.well-known/jwks.json")
            return kid in {k["kid"] for k in r.json()["keys"]}

        await until(b_publishes)


async def _driver_with_funds(node: LiveCsms, email: str) -> dict[str, str]:
    bearer = await node.driver(email)
    r = await node.http.post("/api/v1/me/wallet/top-ups", json={"amount": 5000}, headers=bearer)
    assert r.status_code == 201, r.text
    return bearer


async def test_an_order_placed_and_remote_started_on_b_starts_on_the_charger_on_a(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix, reaper_interval_s=0) as (a, b):
        await a.add_charger("CP-X8")
        await a.http.patch("/api/v1/admin/chargers/CP-X8", json={"registration": "Accepted"})
        dan = await _driver_with_funds(b, "dan@example.org")
        order_json = {"charger_id": "CP-X8", "evse_id": 1, "amount": 100}
        async with charger_on(a, "CP-X8") as cp:
            r = await b.http.post("/api/v1/orders", json=order_json, headers=dan)
            assert r.status_code == 201, r.text
            order = r.json()
            r = await b.http.post(f"/api/v1/orders/{order['id']}/remote-start", headers=dan)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "Accepted"
            assert cp.received[-1] == (
                "RemoteStartTransaction",
                {"id_tag": order["id"], "connector_id": 1},
            )
            started = await cp.call(
                call16.StartTransaction(
                    connector_id=1,
                    id_tag=order["id"],
                    meter_start=0,
                    timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                ),
                suppress=False,
            )
            assert started.id_tag_info["status"] == "Accepted"
            # another order, cancelled on B: the revocation is asked of the charger on A
            r = await b.http.post("/api/v1/orders", json=order_json, headers=dan)
            assert r.status_code == 201, r.text
            second = r.json()
            r = await b.http.post(f"/api/v1/orders/{second['id']}/cancel", headers=dan)
            assert r.status_code == 200, r.text
            transfers = _drain(cp.data_transfers)
            assert any(second["id"] in str(d) for d in transfers), transfers


def _drain(queue: asyncio.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def test_with_redis_down_local_chargers_work_and_other_nodes_answer_503(
    tmp_path: Path, pg_url: str
) -> None:
    await _reset_pg(pg_url)
    settings = make_settings(
        tmp_path, database_url=pg_url, redis_url="redis://127.0.0.1:1/0", node_id="node-alone"
    )
    async with serve(settings) as alone:
        await alone.add_charger("CP-X9")
        await alone.add_charger("CP-X10")
        async with charger_on(alone, "CP-X9"):
            r = await alone.http.post(
                "/api/v1/admin/chargers/CP-X9/commands/Reset", json={"type": "Soft"}
            )
            assert r.status_code == 200, r.text  # its own socket: no Redis needed
            r = await alone.http.post(
                "/api/v1/admin/chargers/CP-X10/commands/Reset", json={"type": "Soft"}
            )
            assert r.status_code == 503, r.text  # it may be on another node: cannot tell
            r = await alone.http.get("/api/v1/admin/chargers/CP-X9")
            assert r.status_code == 200 and r.json()["connected"] is True  # this node's view


async def test_operator_sign_in_failures_count_across_nodes(
    tmp_path: Path, pg_url: str, prefix: str, redis: Redis
) -> None:
    async with two_nodes(tmp_path, pg_url, prefix, login_max_failures=2) as (a, b):
        account = {"name": "olga", "password": "o" * 12, "role": "operator"}
        r = await a.http.post("/api/v1/admin/operators", json=account)
        assert r.status_code == 201, r.text
        wrong = {"username": "olga", "password": "not-hers-at-all"}
        assert (await b.http.post("/api/v1/admin/token", data=wrong)).status_code == 401
        assert (await a.http.post("/api/v1/admin/token", data=wrong)).status_code == 401
        r = await b.http.post("/api/v1/admin/token", data={**wrong, "password": "o" * 12})
        assert r.status_code == 429, r.text
