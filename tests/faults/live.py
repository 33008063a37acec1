"""A real ``qrcharge csms`` process that a test can SIGKILL and start again on the same data,
and a client that keeps requests in flight across the kill and retries what got no answer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.faults import tally

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "faults-admin-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
START_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class CsmsProcess:
    """``qrcharge csms`` on 127.0.0.1:``port`` with its data in ``data_dir`` (and the database
    at ``database_url``); ``settings`` become ``QRCHARGE_<NAME>`` environment variables."""

    data_dir: Path
    database_url: str
    settings: dict[str, object] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    kills: int = 0
    up: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, charger_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp/{charger_id}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "csms.log"

    async def start(self) -> None:
        """Starts the process and returns once it answers HTTP."""
        assert self.proc is None or self.proc.returncode is not None, "already running"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "QRCHARGE_ADMIN_API_KEY": ADMIN_KEY,
            **{f"QRCHARGE_{k.upper()}": str(v) for k, v in self.settings.items()},
        }
        cmd = [sys.executable, "-m", "qrcharge_cli", "csms", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        cmd += ["--database-url", self.database_url, "--log-level", "warning"]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.starts += 1
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            for _ in range(START_TIMEOUT_S * 20):
                if self.proc.returncode is not None:
                    break
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/.well-known/jwks.json")).status_code == 200:
                        self.up.set()
                        return
                await asyncio.sleep(0.05)
        raise AssertionError(f"the CSMS did not start:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, at once (callable from a callback while requests are in flight)."""
        assert self.proc is not None and self.proc.returncode is None
        self.up.clear()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.kills += 1

    async def restart_after_kill(self) -> None:
        assert self.proc is not None
        await self.proc.wait()
        assert self.proc.returncode == -signal.SIGKILL
        await self.start()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def errors_logged(self) -> list[str]:
        """What the log reports as unexpected failures: tracebacks (the line before each,
        what was logged, and the exception) and 500 answers."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        lines = text.splitlines()
        found = []
        for n, line in enumerate(lines):
            if " 500" in line:
                found.append(line)
            elif line.startswith("Traceback"):
                rest = lines[n + 1 :]
                end = next((x for x in rest if x and not x.startswith((" ", "Traceback"))), "")
                found.append(f"{lines[n - 1] if n else ''} -> {end}")
        return found


@contextlib.asynccontextmanager
async def running_csms(
    data_dir: Path, database_url: str, **settings: object
) -> AsyncIterator[CsmsProcess]:
    csms = CsmsProcess(data_dir, database_url, dict(settings))
    await csms.start()
    try:
        yield csms
    finally:
        await csms.stop()


# --- a client that keeps requests in flight across a kill ------------------------------------

Job = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class KillReport:
    """What the client saw: one final answer per job, and the requests that got none."""

    answers: list[httpx.Response]
    unanswered: int  # requests (first tries and retries) that got no answer
    in_flight_at_kill: int  # requests sent and not yet answered when the SIGKILL was sent


async def kill_during(
    csms: CsmsProcess, jobs: Sequence[Job], *, concurrency: int, kill_after: int, what: str
) -> KillReport:
    """Runs ``jobs`` ``concurrency`` at a time and SIGKILLs the CSMS as the ``kill_after``-th
    answer arrives (the other workers' requests are then in flight), starts it again on the
    same data, and retries every job that got no answer until it gets one. A job must be
    safe to retry as the API allows (the same Idempotency-Key, the same token)."""
    answers: list[httpx.Response | None] = [None] * len(jobs)
    pending = list(reversed(range(len(jobs))))
    state = {"answered": 0, "unanswered": 0, "in_flight": 0, "at_kill": -1}
    restarted: asyncio.Task[None] | None = None

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal restarted
        while pending:
            index = pending.pop()
            while True:
                await csms.up.wait()
                state["in_flight"] += 1
                try:
                    answer = await jobs[index](client)
                except httpx.TransportError:
                    state["unanswered"] += 1
                    continue
                finally:
                    state["in_flight"] -= 1
                answers[index] = answer
                state["answered"] += 1
                if state["answered"] == kill_after:
                    state["at_kill"] = state["in_flight"]
                    csms.kill()
                    restarted = asyncio.create_task(csms.restart_after_kill())
                break

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=csms.base_url, timeout=20, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    assert restarted is not None, f"only {state['answered']} answers: no kill"
    await restarted
    final = [a for a in answers if a is not None]
    assert len(final) == len(jobs)
    tally.injected(f"SIGKILL during {what}")
    tally.unanswered(f"SIGKILL during {what}", state["unanswered"])
    return KillReport(final, state["unanswered"], state["at_kill"])


# --- the world on the CSMS, built through its API ---------------------------------------------


async def sign_up(client: httpx.AsyncClient, email: str, funds: int) -> dict[str, str]:
    """A driver signed up and in, with ``funds`` topped up; its bearer header."""
    password = "fault-driver-pw"
    r = await client.post("/api/v1/users", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    while funds > 0:
        amount = min(funds, 100_000)
        r = await client.post("/api/v1/me/wallet/top-ups", json={"amount": amount}, headers=auth)
        assert r.status_code == 201, r.text
        funds -= amount
    return auth


async def add_charger(
    client: httpx.AsyncClient, charger_id: str, password: str, jwk: dict[str, Any] | None = None
) -> None:
    r = await client.post(
        "/api/v1/admin/chargers",
        json={"id": charger_id, "password": password, "evses": 2},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    if jwk is not None:
        r = await client.put(
            f"/api/v1/admin/chargers/{charger_id}/settlement-key", json={"jwk": jwk}, headers=ADMIN
        )
        assert r.status_code == 200, r.text


async def reconciliation(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/api/v1/admin/reconciliation", headers=ADMIN)
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    return report
