"""``qrcharge csms --workers N`` as the operator runs it: one supervisor, N processes on one
port and one PostgreSQL database. Chargers are spread over the workers (each answer names its
node) and what they send is stored; the leader (which runs the reaper) is killed with SIGKILL
and another worker takes over within seconds, capturing a payment that falls due after the
kill; the supervisor starts a new worker in place of the dead one; SIGTERM stops them all.
SQLite is refused."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from qr_extension.keys import generate_key
from tests.csms.conftest import _reset_pg, pg_url
from tests.faults.checks import assert_invariants, rows
from tests.faults.live import ADMIN_KEY, ROOT, add_charger, free_port, sign_up
from tests.faults.test_sigkill_money import settlement

__all__ = ["pg_url"]
pytestmark = pytest.mark.slow

WORKERS = 2
CHARGERS = 16
PASSWORD = "cluster-charger-pw"
FAST = {  # short intervals: a takeover within about a second, captures due after one
    "leader_heartbeat_s": 0.2,
    "leader_lease_s": 2,
    "leader_retry_s": 0.2,
    "reaper_interval_s": 0.2,
    "auto_capture_s": 1,
}


@dataclass
class Cluster:
    """The supervisor process and what the test learnt of its workers."""

    proc: asyncio.subprocess.Process
    port: int
    log: Path
    nodes: dict[str, bool] = field(default_factory=dict)  # node id -> leads (last seen)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def health(self) -> dict[str, Any]:
        """``/healthz`` over a new connection (the kernel picks a worker for each)."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            r = await client.get("/healthz")
            assert r.headers["x-qrcharge-node"] == r.json()["node"]
            body: dict[str, Any] = r.json()
            self.nodes[body["node"]] = body["leader"]
            return body

    async def wait_nodes(self, count: int, timeout_s: float = 60) -> None:
        """Until ``count`` distinct nodes answered (the supervisor's log on failure)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.nodes) < count:
            assert self.proc.returncode is None, self.tail()
            assert loop.time() < deadline, f"only {sorted(self.nodes)}:\n{self.tail()}"
            with contextlib.suppress(httpx.TransportError):
                await self.health()
            await asyncio.sleep(0.05)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def command(data_dir: Path, port: int, database_url: str, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "qrcharge_cli", "csms", "--workers", str(workers),
        "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
        "--database-url", database_url, "--log-level", "info",
    ]  # fmt: skip


def environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QRCHARGE_ADMIN_API_KEY": ADMIN_KEY}
    env.update({f"QRCHARGE_{k.upper()}": str(v) for k, v in FAST.items()})
    return env


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, database_url: str) -> AsyncIterator[Cluster]:
    port = free_port()
    log = tmp_path / "cluster.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *command(tmp_path / "data", port, database_url, WORKERS),
            cwd=ROOT,
            env=environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Cluster(proc, port, log)
    try:
        await running.wait_nodes(WORKERS)
        yield running
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # as Ctrl-C would
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def boot(port: int, charger_id: str) -> tuple[Any, str, dict[str, Any]]:
    """An OCPP 1.6 connection that sent its BootNotification: (socket, node, answer)."""
    token = base64.b64encode(f"{charger_id}:{PASSWORD}".encode()).decode()
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/ocpp/{charger_id}",
        subprotocols=[Subprotocol("ocpp1.6")],
        additional_headers={"Authorization": f"Basic {token}"},
        open_timeout=10,
    )
    node = ws.response.headers["x-qrcharge-node"]
    boot = {"chargePointVendor": "cluster", "chargePointModel": node[:20]}
    await ws.send(json.dumps([2, "boot-1", "BootNotification", boot]))
    return ws, node, await answer_to(ws, "boot-1")


async def answer_to(ws: Any, unique_id: str) -> dict[str, Any]:
    """The CALLRESULT to our CALL ``unique_id`` (the CSMS's own CALLs meanwhile are skipped)."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame[0] != 2:
            assert frame[:2] == [3, unique_id], frame
            payload: dict[str, Any] = frame[2]
            return payload


def pid_of(node: str) -> int:
    """A worker's process id: its default node id is the host name and the pid."""
    return int(node.rsplit("-", 1)[1])


async def leader_node(database_url: str) -> str | None:
    found = await rows(
        database_url,
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE"
        " 'qrcharge-leader %' AND a.datname = current_database()",  # not another cluster's
    )
    return found[0][0].removeprefix("qrcharge-leader ") if found else None


async def test_sqlite_with_several_workers_is_refused(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "qrcharge_cli", "csms", "--workers", "2",
        "--data-dir", str(tmp_path), "--port", str(free_port()),
    ]  # fmt: skip
    done = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, stderr = await done.communicate()
    assert done.returncode == 2
    (line,) = stderr.decode().splitlines()
    assert "--workers 2 needs PostgreSQL" in line and "--workers 1" in line
    assert not (tmp_path / "qrcharge.db").exists()  # refused before touching anything


@pytest.mark.postgres
async def test_workers_share_chargers_and_a_killed_leader_is_replaced(
    tmp_path: Path, pg_url: str
) -> None:
    await _reset_pg(pg_url)  # an empty database: the workers start on it together
    key = generate_key()
    async with (
        cluster(tmp_path, pg_url) as running,
        httpx.AsyncClient(base_url=running.base_url, timeout=20) as client,
    ):
        # one set of keys on disk, made once though every worker loads it
        (manifest,) = (tmp_path / "data" / "keys").glob("manifest.json")
        assert len(json.loads(manifest.read_text())["keys"]) == 1
        for n in range(CHARGERS):
            await add_charger(client, f"CL{n:02d}", PASSWORD)
        await add_charger(client, "CLPAY", PASSWORD, key.public.to_jwk())
        driver = await sign_up(client, "cluster@example.org", 20_000)

        # chargers land on different workers, and what they send is stored
        links = [await boot(running.port, f"CL{n:02d}") for n in range(CHARGERS)]
        served = {node for _, node, _ in links}
        assert served == set(running.nodes), (served, running.nodes)
        assert {answer["status"] for _, _, answer in links} == {"Accepted"}
        for _ in range(100):
            stored = await rows(
                pg_url, "SELECT id, model FROM chargers WHERE online AND vendor = 'cluster'"
            )
            if len(stored) == CHARGERS:
                break
            await asyncio.sleep(0.05)
        assert sorted(stored) == sorted(
            (f"CL{n:02d}", node[:20]) for n, (_, node, _) in enumerate(links)
        )

        # exactly one leader, the one named by the lock
        leader = await leader_node(pg_url)
        assert leader in running.nodes
        for _ in range(40):
            await running.health()
        assert [node for node, leads in running.nodes.items() if leads] == [leader]

        # SIGKILL the leader: a survivor takes over within seconds
        loop = asyncio.get_running_loop()
        os.kill(pid_of(leader), signal.SIGKILL)
        killed_at = loop.time()
        while (now_leads := await leader_node(pg_url)) in (None, leader):
            assert loop.time() - killed_at < 5, "no takeover"
            await asyncio.sleep(0.05)
        took = loop.time() - killed_at
        assert now_leads in running.nodes and now_leads != leader

        # a payment that falls due after the kill is captured by the new leader
        r = await client.post(
            "/api/v1/orders",
            json={"charger_id": "CLPAY", "evse_id": 1, "amount": 500},
            headers=driver,
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            "/api/v1/settlements", json={"token": settlement(r.json(), key, 1, 1000)},
            headers=driver,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        payment_id = r.json()["payment_id"]
        for _ in range(200):
            (status,) = (
                await rows(pg_url, "SELECT status FROM payments WHERE id = :id", id=payment_id)
            )[0]
            if status == "captured":
                break
            await asyncio.sleep(0.05)
        assert status == "captured"

        # the chargers on the survivor kept their connections; the others come back
        for ws, node, _ in links:
            if node != leader:
                await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
                assert "currentTime" in await answer_to(ws, "hb")
            await ws.close()
        # the supervisor started a worker in place of the dead one
        await running.wait_nodes(WORKERS + 1)
        assert running.proc.returncode is None
        supervisor_log = running.tail(400)
        assert f"(pid {pid_of(leader)}) exited -9: restarting it" in supervisor_log
        print(f"takeover after SIGKILL of the leader: {took:.2f} s")

    assert running.proc.returncode == 0, running.tail()  # SIGINT: every worker stopped cleanly
    assert running.tail(400).count("Application shutdown complete") >= WORKERS
    assert "Traceback" not in running.log.read_text(errors="replace")
    await assert_invariants(pg_url)
    for node in running.nodes:
        with pytest.raises(ProcessLookupError):
            os.kill(pid_of(node), 0)
