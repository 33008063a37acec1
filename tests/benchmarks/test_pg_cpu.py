"""benchmarks.pg_cpu.server_total_s: the PostgreSQL server's CPU between two readings counts a
connection that came and went between them (a pool's overflow connections do, under load;
the benchmarks used to count only the backends alive at both readings)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from benchmarks.pg_cpu import server_total_s

pytestmark = pytest.mark.postgres
DSN = "postgresql://postgres@127.0.0.1:5432/test"
BURN = "SELECT count(*) FROM generate_series(1, 6000000)"  # about 0.6 s of a backend's CPU


def _burn_in_a_connection_of_its_own() -> None:
    """Runs BURN and disconnects; returns once the server has reaped the backend (the kernel
    adds an exited process's time to its parent's only then)."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        backend = conn.info.backend_pid
        conn.execute(BURN).fetchone()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{backend}").exists():
        assert time.monotonic() < deadline, "the backend was not reaped in 10 s"
        time.sleep(0.01)


def test_a_backend_that_came_and_went_is_counted() -> None:
    before = server_total_s()
    _burn_in_a_connection_of_its_own()  # its backend exits before the second reading
    used = server_total_s() - before
    assert used >= 0.3  # its work, not lost with its process
