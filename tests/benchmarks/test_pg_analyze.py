"""benchmarks.pg_analyze.autoanalyze: a table that grew past autovacuum's analyze threshold
during a run is analyzed within seconds (a run is shorter than autovacuum's naptime), one
below it is left alone; a table gone before its ANALYZE is skipped, and a thread that stopped
on an error fails the run instead of leaving it unanalyzed unseen."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import psycopg
import pytest

from benchmarks import pg_analyze
from benchmarks.pg_analyze import autoanalyze

pytestmark = pytest.mark.postgres
ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
# the server's own autovacuum must not analyze the tables first
NO_AUTOVACUUM = "WITH (autovacuum_enabled = off)"


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


def _dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def _last_analyze(dsn: str, table: str) -> object:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s", (table,)
        ).fetchone()
    assert row is not None
    return row[0]


def _wait_for(analyzed: list[str], table: str) -> None:
    deadline = time.monotonic() + 15
    while table not in analyzed:
        assert time.monotonic() < deadline, f"{table} not analyzed within 15 s"
        time.sleep(0.1)


def test_a_grown_table_is_analyzed_and_a_quiet_one_is_not(scratch: str) -> None:
    dsn = _dsn(scratch)
    with psycopg.connect(dsn, autocommit=True) as conn:  # closed: its statistics are flushed
        conn.execute(f"CREATE TABLE grown (id int PRIMARY KEY) {NO_AUTOVACUUM}")
        conn.execute(f"CREATE TABLE quiet (id int PRIMARY KEY) {NO_AUTOVACUUM}")
        conn.execute("INSERT INTO quiet SELECT generate_series(1, 10)")  # under 50 rows
    with autoanalyze(scratch) as analyzed:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO grown SELECT generate_series(1, 1000)")
        _wait_for(analyzed, "grown")
    assert _last_analyze(dsn, "grown") is not None
    assert _last_analyze(dsn, "quiet") is None
    assert "quiet" not in analyzed


def test_a_table_name_that_needs_quoting_is_analyzed(scratch: str) -> None:
    dsn = _dsn(scratch)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "odd ""name""" (id int) {NO_AUTOVACUUM}')
        conn.execute('INSERT INTO "odd ""name""" SELECT generate_series(1, 1000)')
    with autoanalyze(scratch) as analyzed:
        _wait_for(analyzed, 'odd "name"')
    assert _last_analyze(dsn, 'odd "name"') is not None


def test_a_table_dropped_before_its_analyze_is_skipped(
    scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of a table dropped between the statistics query and its ANALYZE, made certain:
    the query names a table that does not exist before the real ones."""
    dsn = _dsn(scratch)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE grown (id int) {NO_AUTOVACUUM}")
        conn.execute("INSERT INTO grown SELECT generate_series(1, 1000)")
    monkeypatch.setattr(
        pg_analyze, "_DUE", "SELECT 'public', 'dropped' UNION ALL" + pg_analyze._DUE
    )
    with autoanalyze(scratch) as analyzed:
        _wait_for(analyzed, "grown")
    assert "dropped" not in analyzed


def test_a_thread_stopped_by_an_error_fails_the_run(scratch: str) -> None:
    database = scratch.rsplit("/", 1)[1]  # only this test's backend: others may run beside it
    with pytest.raises(RuntimeError, match="autoanalyze stopped"):  # noqa: SIM117
        with autoanalyze(scratch):
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                deadline = time.monotonic() + 15
                while not conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = %s AND datname = %s",
                    (pg_analyze.APPLICATION_NAME, database),
                ).fetchall():
                    assert time.monotonic() < deadline, "no autoanalyze backend within 15 s"
                    time.sleep(0.1)
            time.sleep(3 * pg_analyze.INTERVAL_S)  # its next query meets the closed connection


def test_nothing_is_done_when_disabled(scratch: str) -> None:
    dsn = _dsn(scratch)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE grown (id int) {NO_AUTOVACUUM}")
        conn.execute("INSERT INTO grown SELECT generate_series(1, 1000)")
    with autoanalyze(scratch, enabled=False) as off:
        time.sleep(3 * pg_analyze.INTERVAL_S)
    assert off == []
    assert _last_analyze(dsn, "grown") is None


def test_nothing_is_done_for_sqlite() -> None:
    """No connection at all: a SQLite URL handed to psycopg would fail on entering."""
    with autoanalyze("sqlite+aiosqlite:///x.db") as analyzed:
        pass
    assert analyzed == []
