"""The cluster benchmark's whole matrix, one ``benchmarks.ocpp_load`` run after another.

1, 2 and 4 CSMS processes on PostgreSQL + Redis at 5,000 and 10,000 chargers, a reconnect
storm (every CSMS process killed and started again under load) and a kill -9 of one worker
under load, each with the real paths (RFID tags, paid orders settled and captured) and the
database count at the end. The runs share one PostgreSQL database, data dir (keys) and Redis
prefix: a first ``warm-up`` run registers the 10,000 chargers once (bulk) and connects them
once with a cold password cache (each charger's first argon2 check: minutes of CPU, reported as
its own figure), the later runs start from a warm one as a restarted cluster does. The database
is dropped at the end (``--keep`` keeps it).

Every run writes ``<out>/<name>.json`` (the ``--json`` of ocpp_load); ``<out>/matrix.json``
collects them with each run's wall time and exit code. About 25 minutes at ``--scale 1`` on an
idle 2-core machine; ``--scale 0.05`` (500 chargers at most) is a smoke run of a few minutes.

    .venv/bin/python -m benchmarks.ocpp_cluster_matrix --out /tmp/matrix
    .venv/bin/python -m benchmarks.ocpp_cluster_matrix --out /tmp/matrix-small --scale 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
RUN_TIMEOUT_S = 900


def runs(scale: float) -> list[tuple[str, list[str]]]:
    """(name, ocpp_load options) of each run, in order."""

    def n(chargers: int) -> str:
        return str(max(10, int(chargers * scale)))

    def rate(per_s: int) -> str:
        return str(max(20, int(per_s * scale)))

    big, half = n(10_000), n(5_000)
    common = "--ramp-rate 500"
    plan = [
        ("warm-up", f"--chargers {big} --csms-workers 4 --duration 10 --rate {rate(1000)} "
         f"{common} --connect-retries 10"),
    ]  # fmt: skip
    for workers in (1, 2, 4):
        for chargers in (half, big):
            plan.append(
                (
                    f"{workers}p-{chargers}",
                    f"--chargers {chargers} --csms-workers {workers} --redis --duration 30 "
                    f"--rate {rate(2000)} {common}",
                )
            )
    plan.append(
        ("storm", f"--chargers {big} --csms-workers 4 --duration 90 --rate {rate(1000)} "
         f"{common} --restart-at 15")
    )  # fmt: skip
    plan.append(
        ("kill-9", f"--chargers {big} --csms-workers 4 --duration 45 --rate {rate(2000)} "
         f"{common} --kill-worker-at 15")
    )  # fmt: skip
    return [(name, options.split()) for name, options in plan]


def _drop(name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory for the JSON results")
    parser.add_argument("--scale", type=float, default=1.0, help="chargers and rates x this")
    parser.add_argument("--only", nargs="*", default=[], help="run only these names")
    parser.add_argument("--keep", action="store_true", help="keep the database and data dir")
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=180,
        help="seconds a run waits for the CSMS to answer (4 workers start slowly on a busy box)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = secrets.token_hex(3)
    database, prefix = f"qrcharge_matrix_{tag}", f"qrmatrix-{tag}"
    data_dir = Path(tempfile.mkdtemp(prefix="qrcharge-matrix-"))
    shared = ["--db", "postgresql", "--keep-database", database, "--keep-data-dir", str(data_dir)]
    shared += ["--redis-prefix", prefix, "--startup-timeout", str(args.startup_timeout)]
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "scale": args.scale,
        "runs": {},
    }
    started = time.monotonic()
    try:
        for name, options in runs(args.scale):
            if args.only and name not in args.only and name != "warm-up":
                continue
            path = out / f"{name}.json"
            cmd = [sys.executable, "-m", "benchmarks.ocpp_load", *options, *shared]
            cmd += ["--label", name, "--json", str(path)]
            print(f"== {name}: {' '.join(options)}", flush=True)
            t0 = time.monotonic()
            try:
                done = subprocess.run(cmd, cwd=ROOT, timeout=RUN_TIMEOUT_S)
                code = done.returncode
            except subprocess.TimeoutExpired:
                code = -1
            took = time.monotonic() - t0
            summary = json.loads(path.read_text()) if path.exists() else None
            results["runs"][name] = {
                "options": options,
                "exit_code": code,
                "wall_s": took,
                "summary": summary,
            }
            (out / "matrix.json").write_text(json.dumps(results, indent=2) + "\n")
            print(f"   {name}: exit {code} in {took:.0f} s", flush=True)
    finally:
        results["total_s"] = time.monotonic() - started
        results["machine"]["load_average_at_end"] = os.getloadavg()
        (out / "matrix.json").write_text(json.dumps(results, indent=2) + "\n")
        if not args.keep:
            from benchmarks.ocpp_load import clear_redis_prefix

            _drop(database)
            clear_redis_prefix(prefix)
            shutil.rmtree(data_dir, ignore_errors=True)
    failed = [k for k, v in results["runs"].items() if v["exit_code"] != 0]
    print(f"matrix done in {results['total_s']:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
