"""OCPP load benchmark for the CSMS: N chargers (mixed 1.6 / 2.0.1) against one CSMS process.

Starts the CSMS (``qrcharge csms``) as a subprocess on a free port with a fresh SQLite or
PostgreSQL database, registers the chargers through the operator API, then runs lightweight
raw-WebSocket chargers in 1-2 worker processes: connect (ramp, or ``--storm`` = all at once),
then ``--duration`` seconds of status / transaction / meter value / heartbeat CALLs at an
aggregate ``--rate``. Reports connections held, messages answered per second, latency
percentiles and the CSMS's RSS. Bounded in size and time; targets 127.0.0.1 only.

    .venv/bin/python -m benchmarks.ocpp_load --chargers 1000 --rate 2000 --duration 60
    .venv/bin/python -m benchmarks.ocpp_load --self-test --chargers 200 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import httpx

from benchmarks.ocpp_load_client import HOST, ChargerSpec, WorkerPlan, run_worker
from benchmarks.ocpp_load_frames import CYCLE, HEARTBEATS_ONLY, Version
from benchmarks.ocpp_load_stats import Summary, WorkerReport
from benchmarks.pg_cpu import ServerCpu, backend_cpu

MAX_CHARGERS = 10_000
MAX_DURATION_S = 1_800
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


class LoadError(Exception):
    """The benchmark could not run (target did not start, registration or a worker failed)."""


@dataclass(slots=True)
class Target:
    """The server under load: the CSMS or the stand-in, as a subprocess on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    admin_key: str = ""

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MB from /proc; NaN once the process is gone."""
        values = {"VmRSS": math.nan, "VmHWM": math.nan}
        try:
            text = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return math.nan, math.nan
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process so far (from /proc/<pid>/stat)."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return math.nan
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


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


def charger_specs(count: int, share_201: float, nonce: str) -> list[ChargerSpec]:
    """Deterministic ids ``LOAD00000``..., evenly interleaved 1.6 / 2.0.1 by ``share_201``."""
    specs = []
    for i in range(count):
        version: Version = "2.0.1" if int((i + 1) * share_201) > int(i * share_201) else "1.6"
        specs.append(ChargerSpec(f"LOAD{i:05d}", f"pw-{nonce}-{i}", version))
    return specs


def start_target(args: argparse.Namespace, workdir: Path, database_url: str) -> Target:
    port = free_port()
    log_path = Path(args.csms_log) if args.csms_log else workdir / "target.log"
    env = dict(os.environ)
    if args.self_test:
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # it runs in workdir
        cmd = [sys.executable, "-m", "benchmarks.ocpp_load", "--stand-in-server", str(port)]
        admin_key = ""
    else:
        admin_key = secrets.token_urlsafe(24)
        env["QRCHARGE_ADMIN_API_KEY"] = admin_key
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
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    return Target(process, port, log_path, admin_key)


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


async def register(target: Target, specs: Sequence[ChargerSpec], concurrency: int) -> float:
    """Registers every charger through the operator API, ``concurrency`` at a time."""
    limit = asyncio.Semaphore(concurrency)
    failures: list[str] = []
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{target.port}",
        headers={"Authorization": f"Bearer {target.admin_key}"},
        timeout=120,
    ) as client:

        async def one(spec: ChargerSpec) -> None:
            async with limit:
                body = {"id": spec.charger_id, "password": spec.password, "location": "bench"}
                response = await client.post("/api/v1/admin/chargers", json=body)
                if response.status_code not in (200, 201):
                    failures.append(f"{spec.charger_id}: {response.status_code} {response.text}")

        await asyncio.gather(*(one(spec) for spec in specs))
    if failures:
        raise LoadError(f"{len(failures)} registrations failed, first: {failures[0][:300]}")
    return time.monotonic() - started


@contextmanager
def fresh_postgres_database(enabled: bool) -> Iterator[str]:
    """Creates a uniquely named database for one run and drops it afterwards."""
    if not enabled:
        yield ""
        return
    import asyncpg

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


def pg_sample(args: argparse.Namespace) -> ServerCpu | None:
    """With ``--pg-cpu`` on PostgreSQL: the server's CPU so far (see benchmarks/pg_cpu.py)."""
    if not (args.pg_cpu and args.db == "postgresql" and not args.self_test):
        return None
    return backend_cpu(PG_ADMIN_DSN, args.database_url.rsplit("/", 1)[1])


def pg_report(args: argparse.Namespace, before: ServerCpu | None) -> None:
    after = pg_sample(args)
    if before is None or after is None:
        return
    backends, auxiliary = after.since(before)
    window = args.duration
    print(
        f"PostgreSQL server CPU in the load window: the run's backends {backends:.1f} s "
        f"({backends / window * 100:.0f} % of one core), auxiliaries {auxiliary:.1f} s",
        file=sys.stderr,
    )


class Workers:
    """The worker processes of one run, and the parent's side of their pipe protocol.

    Each worker sends ``("ready", booted)`` after its connect phase, receives ``("go", epoch)``
    and sends ``("report", WorkerReport)`` after the load phase. While waiting, the parent
    samples the target's RSS and, at the end of the load window, its CPU time.
    """

    def __init__(self, args: argparse.Namespace, target: Target, specs: list[ChargerSpec]):
        self.args = args
        self.target = target
        count = max(1, min(args.workers, len(specs)))
        self.summary = Summary(args.label, len(specs), args.storm, args.rate, args.duration, [])
        self.summary.rss_start_mb = self.peak_mb = target.rss_mb()[0]
        self.load_start = math.inf
        self.cpu_at_start = math.nan
        self.pg_at_start: ServerCpu | None = None
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
        self.cpu_at_start = self.target.cpu_s()
        self.pg_at_start = pg_sample(self.args)
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
        summary = self.summary
        if math.isnan(summary.csms_cpu_s) and time.time() >= self.load_start + self.args.duration:
            summary.csms_cpu_s = self.target.cpu_s() - self.cpu_at_start
            pg_report(self.args, self.pg_at_start)
            summary.load_average = (summary.load_average[0], os.getloadavg()[0])


def run_workers(args: argparse.Namespace, target: Target, specs: list[ChargerSpec]) -> Summary:
    """Connect phase, then the load phase; the merged summary with the target's RSS."""
    workers = Workers(args, target, specs)
    try:
        ramp_s = 0 if args.storm else len(specs) / args.ramp_rate
        per_try = 2 * args.connect_timeout + 60  # handshake, boot, backoff or Retry-After
        workers.collect("ready", ramp_s + (args.connect_retries + 1) * per_try + 30)
        workers.go()
        profiler = start_profiler(args, target)
        reports = workers.collect("report", args.duration + 2 * args.call_timeout + 30)
        if profiler is not None:
            try:
                profiler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                profiler.terminate()
    finally:
        workers.close()
    summary = workers.summary
    summary.workers = [r for r in reports if isinstance(r, WorkerReport)]
    summary.rss_end_mb, summary.rss_hwm_mb = target.rss_mb()
    summary.rss_peak_mb = max(workers.peak_mb, summary.rss_end_mb)
    return summary


def run(args: argparse.Namespace) -> Summary:
    nofile = raise_open_file_limit()
    if nofile < 2 * args.chargers + 100:
        print(f"warning: open-file limit {nofile} is low for {args.chargers} chargers")
    specs = charger_specs(args.chargers, args.share_201, secrets.token_hex(4))
    with (
        tempfile.TemporaryDirectory(prefix="qrcharge-load-") as tmp,
        fresh_postgres_database(args.db == "postgresql" and not args.self_test) as db_url,
    ):
        args.database_url = db_url
        target = start_target(args, Path(tmp), db_url)
        try:
            wait_ready(target, args.startup_timeout)
            if not args.self_test:
                took = asyncio.run(register(target, specs, args.register_concurrency))
                print(f"registered {len(specs)} chargers in {took:.1f} s", file=sys.stderr)
            summary = run_workers(args, target, specs)
            code = target.process.poll()
            if code is not None:  # keep what the chargers saw, and say so loudly
                print(f"--- target log tail:\n{target.log_tail()}", file=sys.stderr)
                summary.label += f" -- TARGET EXITED DURING THE RUN (exit code {code})"
            return summary
        except BaseException:
            print(f"--- target log tail ({target.log_path}):\n{target.log_tail()}", file=sys.stderr)
            raise
        finally:
            stop_target(target)


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
    p.add_argument(
        "--pg-cpu", action="store_true", help="print the PostgreSQL server's CPU (load window)"
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
    if not args.label:
        target = "stand-in" if args.self_test else args.db
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
    except LoadError as exc:
        print(f"ocpp_load: {exc}", file=sys.stderr)
        return 1
    print(summary.table())
    if args.json:
        text = json.dumps(summary.as_dict(), indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
