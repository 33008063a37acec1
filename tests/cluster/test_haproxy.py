"""The reference cluster set-up of docs/deployment.md, run as documented: HAProxy (Debian's
package) with ``deploy/haproxy.cfg`` in front of two ``qrcharge csms`` processes, each with its
own ``--node-id`` and port, on one PostgreSQL and the real Redis.

Through HAProxy only: the reference charger connects (the OCPP subprotocol passes both ways),
an operator command sent to whichever node HAProxy picks reaches it and its answer comes back,
the driver API is served by both nodes, a client cannot choose the address the CSMS
throttles by (``X-Forwarded-For`` as the proxy writes it), and a security profile 2 charger
is let in over HAProxy's TLS only (``X-Forwarded-Proto`` as the proxy writes it). The node
that holds the charger is killed with SIGKILL: the charger reconnects through HAProxy to the
survivor within seconds and commands work again.

HAProxy missing is a failure that says how to install it, never a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from redis.asyncio import Redis
from websockets.typing import Subprotocol

from charge_point.charger import Charger
from tests.charge_point.conftest import station_settings
from tests.cluster.conftest import REDIS_URL
from tests.csms.conftest import _reset_pg, basic_auth, pg_url
from tests.csms.tls_pki import TlsPki
from tests.faults.live import ADMIN, ROOT, CsmsProcess, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
__all__ = ["pg_url"]

CONFIG = ROOT / "deploy" / "haproxy.cfg"
CHARGER = "LB-CP1"
PASSWORD = "lb-charger-password"
TTL_S = 2.0
RECONNECT_LIMIT_S = 10.0  # kill -9 of its node -> the charger served by the survivor


def haproxy_binary() -> str:
    path = shutil.which("haproxy", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin")
    if path is None:
        pytest.fail(
            "haproxy is not installed: run scripts/setup-haproxy as root (it installs "
            "Debian's haproxy package with apt-get), then run this test again"
        )
    return path


@dataclass
class Balanced:
    """HAProxy on ``port`` and the two CSMS nodes behind it."""

    port: int
    tls_port: int
    tls: ssl.SSLContext  # a client's: trusts HAProxy's certificate
    nodes: dict[str, CsmsProcess]
    log: Path
    prefix: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """One request on a connection of its own (HAProxy balances each connection)."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=20) as client:
            return await client.get(path, headers=headers)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextlib.asynccontextmanager
async def balanced(tmp_path: Path, database_url: str) -> AsyncIterator[Balanced]:
    """HAProxy started first (its nodes still down), then the two nodes; returns once HAProxy
    has sent a request to each."""
    binary = haproxy_binary()
    await _reset_pg(database_url)
    prefix = f"qrtest-{uuid.uuid4().hex[:10]}"
    lb_port, tls_port, port_1, port_2 = free_port(), free_port(), free_port(), free_port()
    pki = TlsPki(tmp_path)
    certificate = tmp_path / "haproxy.pem"  # HAProxy's form: certificate and key in one file
    certificate.write_bytes(pki.server_cert.read_bytes() + pki.server_key.read_bytes())
    env = {
        **os.environ,
        "QRCHARGE_LB_BIND": f"127.0.0.1:{lb_port}",
        "QRCHARGE_LB_TLS_BIND": f"127.0.0.1:{tls_port}",
        "QRCHARGE_LB_CERT": str(certificate),
        "QRCHARGE_NODE_1": f"127.0.0.1:{port_1}",
        "QRCHARGE_NODE_2": f"127.0.0.1:{port_2}",
    }
    if os.geteuid() == 0:  # as Debian's unit starts it: HAProxy drops to its own account
        env["QRCHARGE_LB_USER"] = "haproxy"
    log = tmp_path / "haproxy.log"
    with log.open("wb") as out:
        proxy = await asyncio.create_subprocess_exec(
            binary, "-db", "-f", str(CONFIG), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    settings = {
        "redis_url": REDIS_URL,
        "redis_prefix": prefix,
        "presence_ttl_s": TTL_S,
        "trusted_proxies": "127.0.0.1",  # HAProxy's address, as the nodes see it
        "charger_auth_max_failures": 2,
    }
    data = tmp_path / "data"  # one key directory, as a shared volume would be
    nodes = {
        "lb-node-1": CsmsProcess(data, database_url, {**settings, "node_id": "lb-node-1"}, port_1),
        "lb-node-2": CsmsProcess(data, database_url, {**settings, "node_id": "lb-node-2"}, port_2),
    }
    client_tls = ssl.create_default_context(cafile=str(pki.server_ca))
    running = Balanced(lb_port, tls_port, client_tls, nodes, log, prefix)
    try:
        await asyncio.gather(*(node.start() for node in nodes.values()))  # on an empty database
        seen: set[str] = set()
        deadline = time.monotonic() + 20
        while seen != set(nodes):  # both marked up by HAProxy's health checks
            assert proxy.returncode is None, running.tail()
            assert time.monotonic() < deadline, f"HAProxy reached only {seen}:\n{running.tail()}"
            with contextlib.suppress(httpx.TransportError):
                r = await running.get("/healthz")
                if r.status_code == 200:
                    seen.add(r.json()["node"])
            await asyncio.sleep(0.05)
        yield running
    finally:
        for node in nodes.values():
            await node.stop()
        if proxy.returncode is None:
            proxy.terminate()
            await proxy.wait()
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def until_true(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"not in {timeout_s} s: {what}"
        await asyncio.sleep(0.05)


def test_the_deployment_guide_shows_the_config_as_it_is() -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text()
    shown = guide.split("<!-- deploy/haproxy.cfg: begin -->\n```\n", 1)[1]
    shown = shown.split("```\n<!-- deploy/haproxy.cfg: end -->", 1)[0]
    assert shown == CONFIG.read_text()


def test_without_haproxy_the_test_fails_and_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *args, **kw: None)
    with pytest.raises(pytest.fail.Exception) as failed:
        haproxy_binary()
    assert "scripts/setup-haproxy" in str(failed.value)


async def test_haproxy_in_front_of_two_nodes(tmp_path: Path, pg_url: str) -> None:
    async with balanced(tmp_path, pg_url) as lb:
        redis = Redis.from_url(REDIS_URL)
        admin = httpx.AsyncClient(base_url=lb.base_url, headers=ADMIN, timeout=40)
        charger = Charger(
            station_settings(
                tmp_path,
                charge_point_id=CHARGER,
                ocpp_version="1.6",
                csms_url=lb.ocpp_url,
                password=PASSWORD,
            )
        )
        task: asyncio.Task[None] | None = None
        try:
            for charger_id in (CHARGER, "LB-CP2", "LB-CP3"):
                r = await admin.post(
                    "/api/v1/admin/chargers",
                    json={"id": charger_id, "password": PASSWORD, "evses": 2},
                )
                assert r.status_code == 201, r.text

            # the OCPP subprotocol passes both ways: the one offered is the one chosen
            async with websockets.connect(
                f"{lb.ocpp_url}/LB-CP2",
                subprotocols=[Subprotocol("ocpp2.0.1")],
                additional_headers=basic_auth("LB-CP2", PASSWORD),
                open_timeout=10,
            ) as ws:
                assert ws.subprotocol == "ocpp2.0.1"
                assert ws.response.headers["x-qrcharge-node"] in lb.nodes

            # a profile 2 charger must come over TLS: HAProxy terminates it and says so in
            # X-Forwarded-Proto, and overwrites what a plain client claims there
            r = await admin.post(
                "/api/v1/admin/chargers",
                json={"id": "LB-CP4", "password": PASSWORD, "evses": 1, "security_profile": 2},
            )
            assert r.status_code == 201, r.text
            with pytest.raises(websockets.InvalidStatus) as plain:
                async with websockets.connect(
                    f"{lb.ocpp_url}/LB-CP4",
                    subprotocols=[Subprotocol("ocpp1.6")],
                    additional_headers={
                        **basic_auth("LB-CP4", PASSWORD),
                        "X-Forwarded-Proto": "https",
                    },
                    open_timeout=10,
                ):
                    pass
            assert plain.value.response.status_code == 403
            async with websockets.connect(
                f"wss://127.0.0.1:{lb.tls_port}/ocpp/LB-CP4",
                subprotocols=[Subprotocol("ocpp1.6")],
                additional_headers=basic_auth("LB-CP4", PASSWORD),
                ssl=lb.tls,
                open_timeout=10,
            ) as ws:
                assert ws.subprotocol == "ocpp1.6"

            # the reference charger connects through HAProxy
            task = asyncio.create_task(charger.run())
            station = charger.station

            async def holder() -> str | None:
                value = await redis.get(f"{lb.prefix}:presence:{CHARGER}")
                return value.decode() if value is not None else None

            async def online() -> bool:
                return station.online and await holder() is not None

            await until_true(online, 15, "the charger online through HAProxy")
            first = await holder()
            assert first in lb.nodes

            # operator commands through HAProxy, whichever node it picks, reach the charger
            answered_by = set()
            for _ in range(4):
                async with httpx.AsyncClient(
                    base_url=lb.base_url, headers=ADMIN, timeout=40
                ) as fresh:
                    r = await fresh.post(
                        f"/api/v1/admin/chargers/{CHARGER}/commands/GetConfiguration",
                        json={"key": ["HeartbeatInterval"]},
                    )
                assert r.status_code == 200, r.text
                (entry,) = r.json()["response"]["configurationKey"]
                assert entry["key"] == "HeartbeatInterval"
                answered_by.add(r.headers["x-qrcharge-node"])
            # leastconn sends new connections to the node without the charger's: the command
            # went to the other node and through Redis to the charger's
            assert answered_by - {first}, answered_by

            # the driver API through HAProxy: both nodes serve it
            r = await admin.post(
                "/api/v1/users", json={"email": "lb@example.org", "password": "lb-driver-pw"}
            )
            assert r.status_code == 201, r.text
            r = await admin.post(
                "/api/v1/token", data={"username": "lb@example.org", "password": "lb-driver-pw"}
            )
            assert r.status_code == 200, r.text
            driver = {"Authorization": f"Bearer {r.json()['access_token']}"}
            served: set[str] = set()
            for _ in range(10):
                answers = await asyncio.gather(
                    *(lb.get(f"/api/v1/chargers/{CHARGER}", headers=driver) for _ in range(6)),
                    lb.get("/api/v1/me", headers=driver),
                )
                assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
                served |= {a.headers["x-qrcharge-node"] for a in answers}
                if served == set(lb.nodes):
                    break
            assert served == set(lb.nodes)

            # wrong charger passwords from one client count as one address, whatever
            # X-Forwarded-For the client itself sends (the proxy writes its own)
            statuses = []
            for n in range(3):
                try:
                    async with websockets.connect(
                        f"{lb.ocpp_url}/LB-CP3",
                        subprotocols=[Subprotocol("ocpp1.6")],
                        additional_headers={
                            **basic_auth("LB-CP3", "not-the-password"),
                            "X-Forwarded-For": f"203.0.113.{n + 1}",
                        },
                        open_timeout=10,
                    ):
                        statuses.append(101)
                except websockets.InvalidStatus as exc:
                    statuses.append(exc.response.status_code)
            assert statuses == [401, 401, 429]

            # SIGKILL the node holding the charger: it reconnects through HAProxy to the other
            survivor = next(name for name in lb.nodes if name != first)
            assert first is not None
            logged = len(lb.log.read_bytes())  # HAProxy's log so far (it saw both down at first)
            lb.nodes[first].kill()
            killed = time.monotonic()

            async def moved() -> bool:
                return station.online and await holder() == survivor

            await until_true(moved, RECONNECT_LIMIT_S, "the charger back on the survivor")
            back_after = time.monotonic() - killed
            r = await admin.post(
                f"/api/v1/admin/chargers/{CHARGER}/commands/GetConfiguration",
                json={"key": ["HeartbeatInterval"]},
            )
            assert r.status_code == 200, r.text
            assert r.json()["response"]["configurationKey"][0]["key"] == "HeartbeatInterval"
            assert r.headers["x-qrcharge-node"] == survivor
            answers = await asyncio.gather(
                *(lb.get("/api/v1/me", headers=driver) for _ in range(4))
            )
            assert {(a.status_code, a.headers["x-qrcharge-node"]) for a in answers} == {
                (200, survivor)
            }
            r = await admin.get(f"/api/v1/admin/chargers/{CHARGER}")
            assert r.json()["connected"] is True
            # and HAProxy's health checks take the dead node out (2 failed checks, 1 s apart)
            server = f"csms/node{list(lb.nodes).index(first) + 1}"

            async def marked_down() -> bool:
                return f"Server {server} is DOWN".encode() in lb.log.read_bytes()[logged:]

            await until_true(marked_down, 5, f"{server} marked down")
            print(f"charger back through HAProxy {back_after:.2f} s after SIGKILL of its node")
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            charger.store.close()
            await admin.aclose()
            await redis.aclose()
        for name, node in lb.nodes.items():
            if node.proc is not None and node.proc.returncode is None:
                assert node.errors_logged() == [], f"{name}:\n{node.log_tail()}"
