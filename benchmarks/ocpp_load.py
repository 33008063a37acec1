"""OCPP load benchmark for the CSMS: N chargers (mixed 1.6 / 2.0.1) against one CSMS process,
or ``--csms-workers N`` processes (``qrcharge csms --workers N``) on PostgreSQL + Redis.

Starts the CSMS (``qrcharge csms``) as a subprocess on a free port with a fresh SQLite or
PostgreSQL database, registers the chargers and their RFID tags through the operator API, has
drivers top their wallets up and place orders for a share of the chargers (``--paid-share``)
through the driver API, then runs lightweight raw-WebSocket chargers in 1-4 worker processes:
connect (ramp, or ``--storm`` = all at once), then ``--duration`` seconds of status /
transaction / meter value / heartbeat CALLs at an aggregate ``--rate``; a paid session is
started with its order id and ends with the charger's signed Settlement and Synced. The drivers
then capture their payments, the CSMS stops, and the database is counted against what the
chargers were answered. ``--kill-worker-at S`` kills one worker with SIGKILL S seconds into the
load, ``--restart-at S`` kills every CSMS process and starts them again (a reconnect storm).
Reports connections held, messages answered per second, latency percentiles, the CSMS's CPU
and RSS per process. Bounded in size and time; targets 127.0.0.1 only.

    .venv/bin/python -m benchmarks.ocpp_load --chargers 1000 --rate 2000 --duration 60
    .venv/bin/python -m benchmarks.ocpp_load --self-test --chargers 200 --duration 5
    .venv/bin/python -m benchmarks.ocpp_load --db postgresql --csms-workers 2 --chargers 1000 \
        --duration 60 --kill-worker-at 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import httpx

from benchmarks import proc
from benchmarks.ocpp_load_check import Expected, compare, read_postgres, read_sqlite
from benchmarks.ocpp_load_client import HOST, ChargerSpec, WorkerPlan, run_worker
from benchmarks.ocpp_load_frames import CYCLE, HEARTBEATS_ONLY, Version
from benchmarks.ocpp_load_setup import Api, Driver, SetupError, orders_per_paid_charger
from benchmarks.ocpp_load_stats import Summary, WorkerReport
from benchmarks.pg_analyze import autoanalyze
from benchmarks.pg_cpu import server_total_s

MAX_CHARGERS = 10_000
MAX_DURATION_S = 1_800
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
SERVERS = ("postgres", "redis-server")  # the shared servers whose CPU is reported too


class LoadError(Exception):
    """The benchmark could not run (target did not start, registration or a worker failed)."""


@dataclass(slots=True)
class Target:
    """The server under load: the CSMS or the stand-in, as a subprocess on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    admin_key: str = ""

    def pids(self) -> list[int]:
        """The processes of the CSMS: the one process, or the supervisor and its workers."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return [pid, *(int(c) for c in children)]

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MB, summed over the CSMS's processes; NaN once they are gone."""
        values = [proc_rss_mb(pid) for pid in self.pids()]
        if all(math.isnan(v[0]) for v in values):
            return math.nan, math.nan
        return (
            sum(v[0] for v in values if not math.isnan(v[0])),
            sum(v[1] for v in values if not math.isnan(v[1])),
        )

    def cpu_s(self) -> float:
        """User + system CPU seconds of the CSMS's processes so far."""
        return sum(c for c in self.cpu_by_pid().values() if not math.isnan(c))

    def cpu_by_pid(self) -> dict[int, float]:
        return {pid: proc_cpu_s(pid) for pid in self.pids()}

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def clear_redis_prefix(prefix: str) -> None:
    """Deletes every Redis key under ``prefix`` (a run's presence and password checks)."""
    from redis import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
    finally:
        client.close()


def proc_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of one process in MB from /proc; NaN when it is gone."""
    values = {"VmRSS": math.nan, "VmHWM": math.nan}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return math.nan, math.nan
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in values:
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far (from /proc/<pid>/stat); NaN if gone."""
    used = proc.cpu_s(pid)
    return math.nan if used is None else used


def servers_cpu_s() -> dict[str, float]:
    """CPU seconds so far of the PostgreSQL and Redis servers on the machine (they serve the
    other users of this machine too: a ceiling on this run's share), every process of each,
    those that came and went included (:func:`server_total_s`: the CSMS's pools open and
    close overflow connections under load, Redis forks to save)."""
    return {name: server_total_s(name) for name in SERVERS}


def servers_used(before: dict[str, float]) -> dict[str, float]:
    """CPU seconds each server used since ``before`` (a reading of :func:`servers_cpu_s`)."""
    now = servers_cpu_s()
    return {name: now[name] - before[name] for name in SERVERS}


def raise_open_file_limit() -> int:
    """Raises RLIMIT_NOFILE to the hard limit (inherited by the CSMS and the workers)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def charger_specs(
    count: int, share_201: float, nonce: str, password: str = "", tags: int = 0
) -> list[ChargerSpec]:
    """Deterministic ids ``LOAD00000``..., evenly interleaved 1.6 / 2.0.1 by ``share_201``,
    each with one of ``tags`` RFID tags of this run (``nonce``; default one per charger) and
    the fleet's ``password`` (a password per charger when none is given)."""
    specs = []
    pool = tags or count
    for i in range(count):
        version: Version = "2.0.1" if int((i + 1) * share_201) > int(i * share_201) else "1.6"
        secret = password or f"pw-{nonce}-{i}"
        tag = f"RF{nonce}{i % pool:05d}"
        specs.append(ChargerSpec(f"LOAD{i:05d}", secret, version, tag=tag))
    return specs


def paid_indices(count: int, share: float) -> list[int]:
    """The chargers that run paid sessions: ``share`` of them, spread evenly."""
    return [i for i in range(count) if int((i + 1) * share) > int(i * share)]


def start_target(
    args: argparse.Namespace,
    workdir: Path,
    database_url: str,
    port: int = 0,
    admin_key: str = "",
) -> Target:
    port = port or free_port()
    log_path = Path(args.csms_log) if args.csms_log else workdir / "target.log"
    env = dict(os.environ)
    if args.self_test:
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # it runs in workdir
        cmd = [sys.executable, "-m", "benchmarks.ocpp_load", "--stand-in-server", str(port)]
        admin_key = ""
    else:
        admin_key = admin_key or secrets.token_urlsafe(24)
        env["QRCHARGE_ADMIN_API_KEY"] = admin_key
        if args.redis_prefix:
            env["QRCHARGE_REDIS_URL"] = REDIS_URL
            env["QRCHARGE_REDIS_PREFIX"] = args.redis_prefix
        if args.csms_source:  # a snapshot (e.g. `git archive`) run with this venv
            source = Path(args.csms_source).resolve()
            env["PYTHONPATH"] = str(source)
            cmd = [sys.executable, "-m", "qrcharge_cli"]
        else:
            cmd = [str(Path(sys.executable).with_name("qrcharge"))]
        cmd += ["csms", "--host", HOST, "--port", str(port)]
        cmd += ["--log-level", args.csms_log_level]
        cmd += ["--data-dir", str(workdir / "csms")]
        if database_url:
            cmd += ["--database-url", database_url]
        if args.csms_workers > 1:
            cmd += ["--workers", str(args.csms_workers)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    return Target(process, port, log_path, admin_key)


def kill_target(target: Target) -> None:
    """SIGKILL to every CSMS process (the workers live in sessions of their own)."""
    for pid in target.pids()[::-1]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    target.process.wait(timeout=10)


def stop_target(target: Target) -> None:
    if target.process.poll() is None:
        target.process.send_signal(signal.SIGTERM)
        try:
            target.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            target.process.kill()
            target.process.wait(timeout=5)


def wait_ready(target: Target, timeout_s: float) -> None:
    """Waits until the target answers HTTP on its port (any status counts)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if target.process.poll() is not None:
            raise LoadError(f"target exited with {target.process.returncode}:\n{target.log_tail()}")
        try:
            httpx.get(f"http://{HOST}:{target.port}/", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise LoadError(f"target not ready after {timeout_s} s:\n{target.log_tail()}")


@contextmanager
def fresh_postgres_database(enabled: bool, keep: str = "") -> Iterator[str]:
    """Creates a uniquely named database for one run and drops it afterwards; with ``keep``,
    that database, created if absent and kept (so that a series of runs registers once)."""
    if not enabled:
        yield ""
        return
    import asyncpg

    if keep:

        async def ensure() -> None:
            conn = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", keep):
                    await conn.execute(f'CREATE DATABASE "{keep}"')
            finally:
                await conn.close()

        asyncio.run(ensure())
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{keep}"
        return
    name = f"qrcharge_load_{secrets.token_hex(6)}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def start_profiler(args: argparse.Namespace, target: Target) -> subprocess.Popen[bytes] | None:
    """With ``--profile FILE``: py-spy samples the target during the load phase.

    The output is py-spy's ``raw`` format (collapsed stacks, one line per stack with its count).
    py-spy is a tool, not a dependency: ``.venv/bin/pip install py-spy``.
    """
    if not args.profile:
        return None
    py_spy = Path(sys.executable).with_name("py-spy")
    cmd = [str(py_spy), "record", "--pid", str(target.process.pid), "--format", "raw"]
    cmd += ["--duration", str(max(1, int(args.duration))), "--rate", "50", "-o", args.profile]
    if args.profile_gil:  # only the thread holding the GIL: where the CPU really goes
        cmd.append("--gil")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Workers:
    """The worker processes of one run, and the parent's side of their pipe protocol.

    Each worker sends ``("ready", booted)`` after its connect phase, receives ``("go", epoch)``
    and sends ``("report", WorkerReport)`` after the load phase. While waiting, the parent
    samples the target's RSS, takes its CPU time per process at the start and the end of the
    load window, and kills a worker or restarts the whole CSMS when the run asks for it.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        target: Target,
        specs: list[ChargerSpec],
        restart: Callable[[], Target] | None = None,
    ):
        self.args = args
        self.target = target
        self.restart = restart
        count = max(1, min(args.workers, len(specs)))
        self.summary = Summary(args.label, len(specs), args.storm, args.rate, args.duration, [])
        self.summary.rss_start_mb = self.peak_mb = target.rss_mb()[0]
        self.rss_idle = {pid: proc_rss_mb(pid)[0] for pid in target.pids()}
        self.load_start = math.inf
        self.cpu_at_start: dict[int, float] = {}
        self.servers_at_start: dict[str, float] = {}
        self.events: dict[str, float] = {}
        self._cpu_before_restart: dict[int, float] = {}
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[BaseProcess] = []
        for w in range(count):
            plan = WorkerPlan(
                port=target.port,
                chargers=tuple(specs[w::count]),
                storm=args.storm,
                connects_per_s=args.ramp_rate / count,
                interval_s=len(specs) / args.rate,
                duration_s=args.duration,
                call_timeout_s=args.call_timeout,
                connect_timeout_s=args.connect_timeout,
                connect_retries=args.connect_retries,
                seed=args.seed + w,
                cycle=HEARTBEATS_ONLY if args.heartbeats_only else CYCLE,
                aligned=args.aligned,
                run=getattr(args, "run", ""),
                key_seed=getattr(args, "key_seed", ""),
            )
            parent, child = ctx.Pipe()
            process = ctx.Process(target=run_worker, args=(plan, child), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def collect(self, kind: str, timeout_s: float) -> list[object]:
        """One message of ``kind`` from every worker, within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        got: dict[int, object] = {}
        while len(got) < len(self.pipes):
            if time.monotonic() > deadline:
                raise LoadError(f"workers did not send {kind!r} within {timeout_s:.0f} s")
            for i, pipe in enumerate(self.pipes):
                if i in got:
                    continue
                if pipe.poll(0.1):
                    message = pipe.recv()
                    if message[0] != kind:
                        raise LoadError(f"worker {i} sent {message[0]!r}, expected {kind!r}")
                    got[i] = message[1]
                elif not self.processes[i].is_alive():
                    raise LoadError(f"worker {i} died with exit code {self.processes[i].exitcode}")
            self._sample()
        return [got[i] for i in range(len(self.pipes))]

    def go(self) -> None:
        """Starts the load phase in every worker at the same wall-clock instant."""
        self.load_start = time.time() + 0.5
        self.cpu_at_start = self.target.cpu_by_pid()
        self.servers_at_start = servers_cpu_s()
        self.summary.load_average = (os.getloadavg()[0], math.nan)
        for pipe in self.pipes:
            pipe.send(("go", self.load_start))

    def close(self) -> None:
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()

    def _sample(self) -> None:
        self.peak_mb = max(self.peak_mb, self.target.rss_mb()[0])
        args, now = self.args, time.time()
        if args.kill_worker_at and "killed" not in self.events:  # noqa: SIM102
            if now >= self.load_start + args.kill_worker_at:
                self._kill_one()
        if args.restart_at and "restart_killed" not in self.events:  # noqa: SIM102
            if self.restart is not None and now >= self.load_start + args.restart_at:
                self._restart_all()
        summary = self.summary
        if math.isnan(summary.csms_cpu_s) and now >= self.load_start + args.duration:
            self._measure_end()

    def _kill_one(self) -> None:
        workers = self.target.pids()[1:]
        if not workers:
            raise LoadError("--kill-worker-at needs --csms-workers 2 or more")
        victim = workers[-1]
        os.kill(victim, signal.SIGKILL)
        self.events["killed"] = time.time()
        self.events["killed_pid"] = victim
        print(f"killed worker pid {victim} (SIGKILL)", file=sys.stderr)

    def _restart_all(self) -> None:
        assert self.restart is not None
        self.events["restart_killed"] = time.time()
        kill_target(self.target)
        for pid, cpu in self.target.cpu_by_pid().items():  # gone: keep what they used
            self.cpu_at_start.setdefault(pid, cpu)
        self._cpu_before_restart = self._cpu_used()
        self.target = self.restart()
        self.events["restart_ready"] = time.time()
        print(
            f"killed every CSMS process and started them again in "
            f"{self.events['restart_ready'] - self.events['restart_killed']:.1f} s",
            file=sys.stderr,
        )

    def _cpu_used(self) -> dict[int, float]:
        """CPU seconds of each CSMS process in the load window so far (a process started
        during the window counts from zero)."""
        used = {}
        for pid, cpu in self.target.cpu_by_pid().items():
            if not math.isnan(cpu):
                used[pid] = cpu - self.cpu_at_start.get(pid, 0.0)
        return used

    def _measure_end(self) -> None:
        summary = self.summary
        used = {**self._cpu_before_restart, **self._cpu_used()}
        summary.csms_cpu_s = sum(used.values())
        summary.cpu_by_process = {str(pid): cpu for pid, cpu in used.items()}
        summary.servers_cpu_s = servers_used(self.servers_at_start)
        rss_end = {pid: proc_rss_mb(pid)[0] for pid in self.target.pids()}
        summary.rss_by_process = {str(pid): mb for pid, mb in rss_end.items()}
        summary.rss_grown_mb = sum(
            mb - self.rss_idle.get(pid, mb) for pid, mb in rss_end.items() if not math.isnan(mb)
        )
        summary.load_average = (summary.load_average[0], os.getloadavg()[0])


def run_workers(
    args: argparse.Namespace,
    target: Target,
    specs: list[ChargerSpec],
    restart: Callable[[], Target] | None = None,
) -> tuple[Summary, Target]:
    """Connect phase, then the load phase; the merged summary and the target at the end
    (another one after a restart)."""
    workers = Workers(args, target, specs, restart)
    try:
        ramp_s = 0 if args.storm else len(specs) / args.ramp_rate
        per_try = 2 * args.connect_timeout + 60  # handshake, boot, backoff or Retry-After
        workers.collect("ready", ramp_s + (args.connect_retries + 1) * per_try + 30)
        workers.go()
        profiler = start_profiler(args, target)
        drain = 30.0  # WorkerPlan.drain_s: owed messages are still sent after the window
        reports = workers.collect("report", args.duration + drain + 2 * args.call_timeout + 60)
        if profiler is not None:
            try:
                profiler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                profiler.terminate()
    finally:
        workers.close()
    summary = workers.summary
    summary.workers = [r for r in reports if isinstance(r, WorkerReport)]
    summary.rss_end_mb, summary.rss_hwm_mb = workers.target.rss_mb()
    summary.rss_peak_mb = max(workers.peak_mb, summary.rss_end_mb)
    summary.load_epoch = workers.load_start
    summary.events = {
        k: v - workers.load_start for k, v in workers.events.items() if k != "killed_pid"
    }
    return summary, workers.target


def _hash(password: str) -> str:
    """The fleet password's argon2id hash, as a provisioning tool makes it."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(password)


def prepare(
    args: argparse.Namespace, target: Target, specs: list[ChargerSpec]
) -> tuple[list[ChargerSpec], Api, dict[str, Driver]]:
    """Registers the fleet and its tags, makes the drivers and their orders; the specs with
    each paid charger's orders."""

    api = Api(target.port, target.admin_key, args.register_concurrency)

    async def work() -> tuple[list[ChargerSpec], Api, dict[str, Driver]]:
        try:
            return await _prepare(args, api, specs)
        finally:
            await api.close()

    return asyncio.run(work())


async def _prepare(
    args: argparse.Namespace, api: Api, specs: list[ChargerSpec]
) -> tuple[list[ChargerSpec], Api, dict[str, Driver]]:
    """Registers the fleet and its tags, makes the drivers and their orders."""
    await api.register_fleet(specs, _hash(specs[0].password))
    await api.register_tags([s.tag for s in specs])
    paid = paid_indices(len(specs), args.paid_share)
    cycle = len(HEARTBEATS_ONLY if args.heartbeats_only else CYCLE)
    each = (
        0
        if args.heartbeats_only
        else orders_per_paid_charger(args.rate, args.duration, len(specs), cycle)
    )
    wanted = [(specs[i].charger_id, i) for i in paid for _ in range(each)]
    owners: dict[str, Driver] = {}
    if wanted:
        count = max(1, min(args.drivers, len(wanted)))
        drivers = await api.drivers(count, math.ceil(len(wanted) / count))
        placed = await api.place_orders(
            [(charger_id, drivers[n % count]) for n, (charger_id, _) in enumerate(wanted)]
        )
        by_charger: dict[int, list[tuple[str, str]]] = {}
        for (_, index), (order_id, token, driver) in zip(wanted, placed, strict=True):
            by_charger.setdefault(index, []).append((order_id, token))
            owners[order_id] = driver
        return (
            [
                dataclasses.replace(spec, orders=tuple(by_charger.get(i, ())))
                for i, spec in enumerate(specs)
            ],
            api,
            owners,
        )
    return specs, api, owners


def run(args: argparse.Namespace) -> Summary:
    nofile = raise_open_file_limit()
    if nofile < 2 * args.chargers + 100:
        print(f"warning: open-file limit {nofile} is low for {args.chargers} chargers")
    nonce = secrets.token_hex(2)
    postgres = args.db == "postgresql" and not args.self_test
    with (
        tempfile.TemporaryDirectory(prefix="qrcharge-load-") as tmp,
        fresh_postgres_database(postgres, args.keep_database) as db_url,
        autoanalyze(db_url, enabled=args.autoanalyze),
    ):
        # a kept database keeps the fleet: its password must come back the same
        password = f"fleet-{args.keep_database}" if args.keep_database else f"fleet-{nonce}-pw"
        specs = charger_specs(args.chargers, args.share_201, nonce, password, args.tags)
        args.run = nonce
        # and its chargers' settlement keys, which the CSMS pinned at their first boot
        args.key_seed = f"settlement-keys-{args.keep_database}" if args.keep_database else ""
        workdir = Path(args.keep_data_dir) if args.keep_data_dir else Path(tmp)
        target = start_target(args, workdir, db_url)
        api: Api | None = None
        try:
            wait_ready(target, args.startup_timeout)
            owners: dict[str, Driver] = {}
            if not args.self_test:
                started = time.monotonic()
                specs, api, owners = prepare(args, target, specs)
                print(
                    f"set up in {time.monotonic() - started:.1f} s: {api.stats.seconds}",
                    file=sys.stderr,
                )

            def restart() -> Target:
                fresh = start_target(args, workdir, db_url, target.port, target.admin_key)
                wait_ready(fresh, args.startup_timeout)
                return fresh

            summary, target = run_workers(args, target, specs, restart)
            code = target.process.poll()
            if code is not None:  # keep what the chargers saw, and say so loudly
                print(f"--- target log tail:\n{target.log_tail()}", file=sys.stderr)
                summary.label += f" -- TARGET EXITED DURING THE RUN (exit code {code})"
            if api is not None:
                summary.check = finish(args, api, owners, summary, target, workdir, db_url)
            return summary
        except BaseException:
            print(f"--- target log tail ({target.log_path}):\n{target.log_tail()}", file=sys.stderr)
            raise
        finally:
            stop_target(target)
            if args.redis_prefix and args.own_redis_prefix:
                clear_redis_prefix(args.redis_prefix)


def finish(
    args: argparse.Namespace,
    api: Api,
    owners: dict[str, Driver],
    summary: Summary,
    target: Target,
    workdir: Path,
    db_url: str,
) -> dict[str, Any]:
    """The drivers capture their settled orders, the CSMS stops, the database is counted."""
    sessions = [s for w in summary.workers for s in w.sessions]
    started = {s.id_tag for s in sessions if s.kind == "order" and s.start_status}

    async def capture() -> int:
        api.reopen()
        try:
            outcome = await api.capture([(o, owners[o]) for o in sorted(started)])
        finally:
            await api.close()
        return outcome["captured"]

    captured = asyncio.run(capture())
    summary.http = {"seconds": api.stats.seconds, "counts": dict(api.stats.counts)}
    stop_target(target)
    if db_url:
        rows = read_postgres(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    else:
        rows = read_sqlite(str(workdir / "csms" / "qrcharge.db"))
    expected = Expected(
        sessions=sessions,
        tags=frozenset(api.tags),
        orders_placed=frozenset(owners),
        captured=captured,
    )
    return compare(expected, rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ocpp_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--chargers", type=int, default=100, help="number of chargers (max 10000)")
    p.add_argument("--share-201", type=float, default=0.5, help="share of 2.0.1 chargers")
    p.add_argument("--rate", type=float, default=2000, help="aggregate offered CALLs per second")
    p.add_argument("--duration", type=float, default=30, help="load phase in seconds")
    p.add_argument("--storm", action="store_true", help="connect everyone at once")
    p.add_argument(
        "--heartbeats-only", action="store_true", help="load phase of Heartbeats only (a floor)"
    )
    p.add_argument(
        "--aligned",
        action="store_true",
        help="every charger begins the cycle at its first step, so all send the same kind of "
        "message in the same half cycle (bursts of starts); default: a random step each",
    )
    p.add_argument("--ramp-rate", type=float, default=200, help="connections/s when not a storm")
    p.add_argument("--workers", type=int, default=0, help="load processes (default: 1 or 2)")
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument(
        "--autoanalyze",
        action="store_true",
        help="PostgreSQL: ANALYZE by autovacuum's rule every second (benchmarks/pg_analyze.py)",
    )
    p.add_argument(
        "--csms-workers",
        type=int,
        default=1,
        help="CSMS processes (qrcharge csms --workers N; PostgreSQL and Redis)",
    )
    p.add_argument("--redis", action="store_true", help="the CSMS uses Redis (implied by workers)")
    p.add_argument("--redis-prefix", default="", help="its Redis prefix (default: one per run)")
    p.add_argument(
        "--paid-share", type=float, default=0.3, help="share of chargers running paid orders"
    )
    p.add_argument("--drivers", type=int, default=20, help="driver accounts placing the orders")
    p.add_argument(
        "--tags", type=int, default=500, help="RFID tags registered (the fleet shares them)"
    )
    p.add_argument(
        "--kill-worker-at",
        type=float,
        default=0,
        metavar="S",
        help="SIGKILL one CSMS worker S s into the load",
    )
    p.add_argument(
        "--restart-at",
        type=float,
        default=0,
        metavar="S",
        help="SIGKILL every CSMS process S s into the load and start them again",
    )
    p.add_argument(
        "--keep-database",
        default="",
        metavar="NAME",
        help="PostgreSQL database to use and keep (created if absent): runs after the first "
        "find the fleet registered",
    )
    p.add_argument(
        "--keep-data-dir", default="", metavar="DIR", help="the CSMS's data dir, kept (its keys)"
    )
    p.add_argument("--self-test", action="store_true", help="run against the built-in stand-in")
    p.add_argument("--call-timeout", type=float, default=30)
    p.add_argument("--connect-timeout", type=float, default=60)
    p.add_argument(
        "--connect-retries",
        type=int,
        default=5,
        help="per charger, after Retry-After or a 1-3 s x attempt backoff",
    )
    p.add_argument("--startup-timeout", type=float, default=60)
    p.add_argument("--register-concurrency", type=int, default=16)
    p.add_argument(
        "--csms-log-level", default="warning", help="the CSMS's --log-level (info logs frames)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--label", default="", help="name of the run in the output")
    p.add_argument("--json", metavar="FILE", help="also write the summary as JSON ('-': stdout)")
    p.add_argument("--csms-source", metavar="DIR", help="run the CSMS from this source tree")
    p.add_argument("--csms-log", metavar="FILE", help="keep the target's output in FILE")
    p.add_argument("--profile", metavar="FILE", help="py-spy the target (raw stacks to FILE)")
    p.add_argument(
        "--profile-gil", action="store_true", help="with --profile: sample only the GIL holder"
    )
    p.add_argument("--stand-in-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return p


def check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if not 1 <= args.chargers <= MAX_CHARGERS:
        parser.error(f"--chargers must be 1..{MAX_CHARGERS}")
    if not 0 < args.duration <= MAX_DURATION_S:
        parser.error(f"--duration must be in (0, {MAX_DURATION_S}]")
    if not 0 < args.rate <= 20 * args.chargers:
        parser.error("--rate must be > 0 and at most 20 CALLs/s per charger")
    if not 0 <= args.share_201 <= 1 or args.ramp_rate <= 0:
        parser.error("--share-201 must be in [0, 1] and --ramp-rate > 0")
    if args.workers == 0:
        args.workers = 1 if args.chargers <= 1000 else 2
    if not 1 <= args.workers <= 4 or not 0 <= args.connect_retries <= 10:
        parser.error("--workers must be 1..4 and --connect-retries 0..10")
    if args.csms_workers > 1 and args.db != "postgresql":
        parser.error("--csms-workers > 1 needs --db postgresql")
    if not 0 <= args.paid_share <= 1 or args.drivers < 1:
        parser.error("--paid-share must be in [0, 1] and --drivers at least 1")
    if args.kill_worker_at and args.csms_workers < 2:
        parser.error("--kill-worker-at needs --csms-workers 2 or more")
    if args.keep_database and args.db != "postgresql":
        parser.error("--keep-database needs --db postgresql")
    args.own_redis_prefix = not args.redis_prefix  # a prefix of its own is deleted at the end
    if args.redis or args.csms_workers > 1 or args.redis_prefix:
        args.redis_prefix = args.redis_prefix or f"qrload-{secrets.token_hex(4)}"
    if not args.label:
        target = "stand-in" if args.self_test else args.db
        if args.csms_workers > 1:
            target += f", {args.csms_workers} CSMS processes"
        args.label = target + (", heartbeats only" if args.heartbeats_only else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.stand_in_server is not None:
        from benchmarks.ocpp_load_standin import serve_stand_in

        raise_open_file_limit()
        asyncio.run(serve_stand_in(args.stand_in_server))
        return 0
    check(args, parser)
    try:
        summary = run(args)
    except (LoadError, SetupError) as exc:
        print(f"ocpp_load: {exc}", file=sys.stderr)
        return 1
    print(summary.table())
    failed = summary.check is not None and not summary.check["ok"]
    if args.json:
        text = json.dumps(summary.as_dict(), indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
