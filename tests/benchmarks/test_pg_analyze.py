"""benchmarks.pg_analyze.autoanalyze: a table that grew past autovacuum's analyze threshold
during a run is analyzed within seconds (a run is shorter than autovacuum's naptime), one
below it is left alone."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import psycopg
import pytest

from benchmarks.pg_analyze import autoanalyze

pytestmark = pytest.mark.postgres
ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def scratch() -> Iterator[str]:
    """A database of its own (autoanalyze analyzes every table of its database)."""
    name = f"qrcharge_analyze_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _last_analyze(dsn: str, table: str) -> object:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s", (table,)
        ).fetchone()
    assert row is not None
    return row[0]


def test_a_grown_table_is_analyzed_and_a_quiet_one_is_not(scratch: str) -> None:
    dsn = "postgresql://" + scratch.split("://", 1)[1]
    with psycopg.connect(dsn, autocommit=True) as conn:  # closed: its statistics are flushed
        conn.execute("CREATE TABLE grown (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE quiet (id int PRIMARY KEY)")
        conn.execute("INSERT INTO quiet SELECT generate_series(1, 10)")  # under 50 rows
    with autoanalyze(scratch) as analyzed:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO grown SELECT generate_series(1, 1000)")
        deadline = time.monotonic() + 15
        while "grown" not in analyzed:
            assert time.monotonic() < deadline, "not analyzed within 15 s"
            time.sleep(0.1)
    assert _last_analyze(dsn, "grown") is not None
    assert _last_analyze(dsn, "quiet") is None
    assert "quiet" not in analyzed


def test_nothing_is_done_for_sqlite_or_when_disabled() -> None:
    with autoanalyze("sqlite+aiosqlite:///x.db") as analyzed:
        pass
    assert analyzed == []
    with autoanalyze(ADMIN.replace("postgresql", "postgresql+asyncpg"), enabled=False) as off:
        time.sleep(1.2)
    assert off == []
