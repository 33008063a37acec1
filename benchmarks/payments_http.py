"""The payments benchmark over real HTTP: ``qrcharge csms`` (one process, or ``--workers N``
on PostgreSQL with Redis) and light keep-alive client processes on the same machine.

What is measured, per phase (orders; settlements = upload + confirm):

* requests per second over the phase's wall time, and the latency of each request (send to
  the end of the answer) as p50/p99;
* the CPU seconds of every CSMS process (each worker, and the supervisor), of the client
  processes, and of the PostgreSQL server (all its processes, connections that came and went
  included: :func:`benchmarks.pg_cpu.server_total_s`), read from ``/proc`` before and after:
  on a shared 2-core machine the CPU per request is the figure to compare, the wall rate
  depends on who else is running.

The client is a raw HTTP/1.1 protocol on uvloop (pre-encoded requests, answers parsed by their
``Content-Length``): about a tenth of the server's CPU per request, reported so that it can
be checked. ``--clients`` spreads the connections over several client processes. Connections
are opened before the clock starts; with ``SO_REUSEPORT`` the kernel spreads them over the
workers by a hash of the client's port, so the per-worker CPU shows any imbalance.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

from benchmarks import proc
from benchmarks.pg_cpu import server_total_s

HOST = "127.0.0.1"
_HEALTH = b"GET /healthz HTTP/1.1\r\nHost: csms\r\nConnection: close\r\n\r\n"


def cpu_s(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` so far; 0 when it is gone."""
    return proc.cpu_s(pid) or 0.0


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


# -- the client ---------------------------------------------------------------------------------


class _Conn(asyncio.Protocol):
    """One keep-alive connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("connection closed by the server")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.lost)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        at = head.find(b"content-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at)
            length = int(head[at + 15 : stop if stop > 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        waiter, self.waiter = self.waiter, None
        waiter.set_result((status, body))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.lost is not None:
            raise self.lost
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


def _encode(method: str, path: str, auth: bytes, body: bytes | None) -> bytes:
    head = b"%s %s HTTP/1.1\r\nHost: csms\r\nAuthorization: %s\r\n" % (
        method.encode(),
        path.encode(),
        auth,
    )
    if body is None:
        return head + b"Content-Length: 0\r\n\r\n"
    return head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


class _Link:
    """A keep-alive connection, opened again when the server has closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: _Conn | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.conn = await loop.create_connection(_Conn, HOST, self.port)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.conn is None or self.conn.lost is not None:
            await self.open()
        assert self.conn is not None
        return await self.conn.request(data)

    def close(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()


async def _client_main(pipe: Connection, port: int, connections: int) -> None:
    loop = asyncio.get_running_loop()
    conns = [_Link(port) for _ in range(connections)]
    for conn in conns:
        await conn.open()
    pipe.send(("ready", None))
    while True:
        message = await loop.run_in_executor(None, pipe.recv)
        if message[0] == "stop":
            break
        kind, work = message
        for conn in conns:  # fresh ones: uvicorn closes those idle for a few seconds
            conn.close()
            await conn.open()
        pipe.send(("done", await _client_phase(kind, work, conns)))
    for conn in conns:
        conn.close()


async def _run(kind: str, conn: _Link, job: Any, latencies: list[float]) -> Any:
    """One order (answer: its id) or one settlement (upload, then confirm: the receipt id)."""
    auth, first = job
    t0 = time.perf_counter()
    status, body = await conn.request(_encode("POST", first[0], auth, first[1]))
    t1 = time.perf_counter()
    latencies.append(t1 - t0)
    if not 200 <= status < 300:
        raise RuntimeError(f"{first[0]} answered {status}: {body[:200]!r}")
    answer = json.loads(body)
    if kind == "orders":
        return answer["id"]
    path = f"/api/v1/payments/{answer['payment_id']}/confirm"
    status, body = await conn.request(_encode("POST", path, auth, None))
    latencies.append(time.perf_counter() - t1)
    if status != 200:
        raise RuntimeError(f"confirm answered {status}: {body[:200]!r}")
    return json.loads(body)["receipt_id"]


async def _client_phase(kind: str, work: list[Any], conns: list[_Link]) -> tuple[Any, ...]:
    """Runs ``work`` over the connections: (results, latencies, errors, start, end, CPU s)."""
    cpu, started = time.process_time(), time.time()
    results: list[Any] = [None] * len(work)
    latencies: list[float] = []
    errors: list[str] = []
    todo = list(range(len(work) - 1, -1, -1))

    async def loop_on(conn: _Link) -> None:
        while todo:
            i = todo.pop()
            try:
                results[i] = await _run(kind, conn, work[i], latencies)
            except Exception as exc:  # reported to the parent, which stops the run
                errors.append(f"{type(exc).__name__}: {exc}"[:300])

    await asyncio.gather(*(loop_on(c) for c in conns))
    return results, latencies, errors, started, time.time(), time.process_time() - cpu


def _client_process(pipe: Connection, port: int, connections: int) -> None:
    import uvloop

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    uvloop.run(_client_main(pipe, port, connections))


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One measured phase over HTTP."""

    label: str
    count: int
    seconds: float
    latencies: list[float]  # per request, seconds
    requests: int
    csms_cpu: dict[str, float]  # per CSMS process (w1.. or "csms", "supervisor")
    client_cpu: float
    db_cpu: float  # the PostgreSQL server's, all its processes (0 on SQLite)
    xacts: int | None = None  # PostgreSQL transactions in the phase (:func:`transactions`)
    results: list[Any] = field(default_factory=list)  # per job: order id or receipt id

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def csms_total(self) -> float:
        return sum(self.csms_cpu.values())

    @property
    def csms_ms_per_request(self) -> float:
        return 1000 * self.csms_total / self.requests if self.requests else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def lines(self) -> list[str]:
        per_proc = ", ".join(f"{k} {v:.2f}" for k, v in self.csms_cpu.items())
        return [
            f"{self.label:<34} {self.per_s:7.0f}/s  ({self.count} in {self.seconds:.2f} s; "
            f"{self.requests} requests, p50 {self.percentile(0.5):.1f} ms, "
            f"p99 {self.percentile(0.99):.1f} ms)",
            f"    CPU s: CSMS {self.csms_total:.2f} ({per_proc}) = "
            f"{self.csms_ms_per_request:.2f} ms/request, "
            f"{1000 * self.csms_total / max(1, self.count):.2f} ms per {self.unit}; "
            f"client {self.client_cpu:.2f} "
            f"({1000 * self.client_cpu / max(1, self.requests):.2f} ms/request); "
            f"PostgreSQL server {self.db_cpu:.2f}"
            + (
                ""
                if self.xacts is None
                else f"; {self.xacts / max(1, self.requests):.2f} PostgreSQL transactions/request"
            ),
        ]

    @property
    def unit(self) -> str:
        return "order" if self.label.startswith("orders") else "settlement"

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "count": self.count,
            "seconds": round(self.seconds, 3),
            "per_s": round(self.per_s, 1),
            "requests": self.requests,
            "p50_ms": round(self.percentile(0.5), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "csms_cpu_s": {k: round(v, 3) for k, v in self.csms_cpu.items()},
            "csms_ms_per_request": round(self.csms_ms_per_request, 3),
            "client_cpu_s": round(self.client_cpu, 3),
            "db_cpu_s": round(self.db_cpu, 3),
            "pg_transactions": self.xacts,
        }


class Csms:
    """``qrcharge csms`` (``--workers N``) from this tree or from ``source``."""

    def __init__(
        self,
        *,
        tmp: Path,
        url: str,
        workers: int,
        redis_url: str,
        redis_prefix: str,
        source: Path | None,
        log_name: str,
    ) -> None:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            self.port: int = probe.getsockname()[1]
        env = dict(
            os.environ,
            QRCHARGE_UPLOAD_RATE_PER_DRIVER="0",  # the drivers upload as fast as they can
            QRCHARGE_UPLOAD_RATE_PER_CLIENT="0",
            QRCHARGE_REDIS_URL=redis_url,
            QRCHARGE_REDIS_PREFIX=redis_prefix,
        )
        if source is not None:  # a snapshot (git archive, another worktree) with this venv
            env["PYTHONPATH"] = str(source)
            cmd = [sys.executable, "-m", "qrcharge_cli"]
        else:
            cmd = [str(Path(sys.executable).with_name("qrcharge"))]
        cmd += ["csms", "--host", HOST, "--port", str(self.port), "--log-level", "warning"]
        cmd += ["--data-dir", str(tmp), "--database-url", url, "--workers", str(workers)]
        self.workers = workers
        self.log_path = tmp / log_name
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=source or None
            )

    def pids(self) -> dict[str, int]:
        """The serving processes (``w1``.. by start order) and the supervisor, if any."""
        if self.workers == 1:
            return {"csms": self.process.pid}
        workers = sorted(children(self.process.pid))
        return {"supervisor": self.process.pid} | {f"w{i}": pid for i, pid in enumerate(workers, 1)}

    def wait_ready(self, timeout_s: float = 180) -> None:
        """Until every worker answers (a worker's socket joins the port once it serves)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the CSMS exited {self.process.returncode}: {self.log_tail()}")
            if len(self.pids()) == self.workers + (self.workers > 1) and self._answers():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the CSMS did not start in {timeout_s} s: {self.log_tail()}")

    def _answers(self) -> bool:
        """Whether each worker serves: ``/healthz`` over fresh connections names them all."""
        seen: set[bytes] = set()
        for _ in range(40 * self.workers):
            try:
                with socket.create_connection((HOST, self.port), timeout=2) as sock:
                    sock.sendall(
                        b"GET /healthz HTTP/1.1\r\nHost: csms\r\nConnection: close\r\n\r\n"
                    )
                    data = b""
                    while chunk := sock.recv(65536):
                        data += chunk
            except OSError:
                return False
            for line in data.split(b"\r\n"):
                if line.lower().startswith(b"x-qrcharge-node:"):
                    seen.add(line)
            if len(seen) >= self.workers:
                return True
        return False

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class Clients:
    """``count`` client processes holding ``connections`` keep-alive connections in all."""

    def __init__(self, port: int, count: int, connections: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for n in range(count):
            ours, theirs = context.Pipe()
            share = connections // count + (n < connections % count)
            process = context.Process(target=_client_process, args=(theirs, port, share))
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)
        for pipe in self.pipes:
            kind, _ = pipe.recv()
            assert kind == "ready"

    def run(
        self, kind: str, jobs: Sequence[Any]
    ) -> tuple[list[Any], list[float], list[str], float, float]:
        """Runs ``jobs`` spread over the clients: (results in order, latencies, errors, wall
        seconds, client CPU seconds)."""
        shares = [list(range(n, len(jobs), len(self.pipes))) for n in range(len(self.pipes))]
        for pipe, share in zip(self.pipes, shares, strict=True):
            pipe.send((kind, [jobs[i] for i in share]))
        results: list[Any] = [None] * len(jobs)
        latencies: list[float] = []
        errors: list[str] = []
        starts, ends, cpu = [], [], 0.0
        for pipe, share in zip(self.pipes, shares, strict=True):
            _, (got, lat, errs, start, end, used) = pipe.recv()
            for i, result in zip(share, got, strict=True):
                results[i] = result
            latencies += lat
            errors += errs
            starts.append(start)
            ends.append(end)
            cpu += used
        return results, latencies, errors, max(ends) - min(starts), cpu

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(("stop", None))
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()


async def transactions(db: Any) -> int | None:
    """Transactions committed or rolled back in the run's database so far (PostgreSQL's
    statistics, flushed by each backend within a second of going idle; 0 on SQLite). A pool
    pre-ping, a read in a session of its own and a unit of work are one each: a count that
    does not depend on how busy the machine is. None on SQLite."""
    from sqlalchemy import text

    if db.engine.dialect.name != "postgresql":
        return None
    async with db.engine.connect() as conn:
        row = await conn.execute(
            text(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        )
        return int(row.scalar_one())


def measure(pids: dict[str, int], db: Any) -> tuple[dict[str, float], float]:
    """CPU seconds so far of each CSMS process, and of the PostgreSQL server when ``db`` is
    on PostgreSQL (else 0): every process of the server on this machine, which shares it
    with nothing else during a run."""
    on_postgres = db is not None and db.engine.dialect.name == "postgresql"
    return {k: cpu_s(p) for k, p in pids.items()}, server_total_s() if on_postgres else 0.0


def percentiles(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def start_profilers(pids: dict[str, int], prefix: str, n: int) -> list[subprocess.Popen[bytes]]:
    """py-spy sampling each serving process (raw stacks, the GIL holder's only: CPU, not
    waiting), until :func:`stop_profilers`."""
    spy = str(Path(sys.executable).with_name("py-spy"))
    started = []
    for name, pid in pids.items():
        if name == "supervisor":
            continue
        out = f"{prefix}-{n}-{name}.txt"
        cmd = [spy, "record", "-p", str(pid), "-o", out, "-f", "raw", "-r", "200", "--gil"]
        started.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1)  # attached
    return started


def stop_profilers(profilers: Sequence[subprocess.Popen[bytes]]) -> None:
    for spy in profilers:
        spy.send_signal(signal.SIGINT)
    for spy in profilers:
        spy.wait(30)
