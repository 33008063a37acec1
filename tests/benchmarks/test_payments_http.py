"""Smoke test of ``payments_bench --http-server``: a short run against ``qrcharge csms
--workers 2`` on PostgreSQL and Redis, so that the benchmark of the driver side over HTTP
keeps working (its figures are in docs/benchmarks.md). 53 s on the saturated 2-CPU machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_two_workers_take_orders_and_settlements_over_http(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "benchmarks.payments_bench", "--http-server", "--drivers", "20"]
    cmd += ["--db", "postgresql", "--workers", "2", "--count", "40", "--warmup", "10"]
    cmd += ["--json", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = json.loads(out.read_text())["rounds"]
    orders, paid = run["phases"]
    assert (orders["count"], orders["requests"]) == (40, 40)
    assert (paid["count"], paid["requests"]) == (40, 80)  # upload + confirm each
    for phase in (orders, paid):
        # both workers served, and the supervisor is counted apart from them
        assert set(phase["csms_cpu_s"]) == {"supervisor", "w1", "w2"}
        assert phase["per_s"] > 0 and 0 < phase["p50_ms"] <= phase["p99_ms"]
        assert phase["client_cpu_s"] > 0
    assert "settlements verified + paid" in done.stdout
