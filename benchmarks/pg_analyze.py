"""The planner's statistics kept up to date during a benchmark run, as autovacuum keeps them.

A run starts on a fresh database whose tables are empty and grows them many times over in
seconds. PostgreSQL plans a prepared statement (psycopg prepares one after its fifth run, and
the CSMS's connections keep them) for the tables as they were then, and plans again only
when the table's statistics change: a primary-key lookup planned while its table held a
page is a sequential scan, and stays one while the table grows to thousands of rows, every
execution reading all of them. On a live server autovacuum analyzes a table once a tenth of
it (plus 50 rows) has changed, within its naptime (a minute); a benchmark of thirty seconds
never sees that happen (and on this machine, whose server runs with autovacuum off, no run
ever does), so it measures scans a live server does not make.

:func:`autoanalyze` (the benchmarks' ``--autoanalyze``) applies autovacuum's analyze rule every
second from a thread of its own: any table changed by more than 50 rows plus a tenth of its
rows since its last analyze is analyzed. Its backend's CPU is the server's, so it counts in
the runs' PostgreSQL figures. It is off by default: at thirty-second runs the analyzes cost
the server more than the scans they avoid (decision D113).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

THRESHOLD_ROWS = 50  # autovacuum_analyze_threshold's default
SCALE = 0.1  # autovacuum_analyze_scale_factor's default
INTERVAL_S = 1.0
APPLICATION_NAME = "qrcharge-autoanalyze"  # its backend in pg_stat_activity

_DUE = """
SELECT schemaname, relname FROM pg_stat_user_tables
WHERE n_mod_since_analyze > %s + %s * GREATEST(n_live_tup, 0)
"""


@contextmanager
def autoanalyze(url: str, *, enabled: bool = True) -> Iterator[list[str]]:
    """While entered, analyzes the tables of ``url``'s database (a PostgreSQL SQLAlchemy URL;
    nothing for any other) as autovacuum would with a naptime of a second. Yields the list of
    the tables analyzed so far, one entry per ANALYZE.

    A table dropped between the statistics query and its ANALYZE is skipped. Any other error
    stops the thread, and leaving the block then raises :class:`RuntimeError`: a run measured
    "with --autoanalyze" whose analyzes stopped part-way is not one."""
    analyzed: list[str] = []
    if not enabled or not url.startswith("postgresql"):
        yield analyzed
        return
    import psycopg
    from psycopg import sql

    dsn = "postgresql://" + url.split("://", 1)[1]
    # connected here, not in the thread: a URL it cannot use fails before the run
    conn = psycopg.connect(dsn, autocommit=True, application_name=APPLICATION_NAME)
    stop = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            with conn:
                while not stop.wait(INTERVAL_S):
                    due = conn.execute(_DUE, (THRESHOLD_ROWS, SCALE)).fetchall()
                    for schema, table in due:
                        try:
                            conn.execute(
                                sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table))
                            )
                        except psycopg.errors.UndefinedTable:
                            continue  # dropped since the query
                        analyzed.append(table)
        except BaseException as error:
            failed.append(error)

    thread = threading.Thread(target=run, name="autoanalyze", daemon=True)
    thread.start()
    try:
        yield analyzed
    finally:
        stop.set()
        thread.join(timeout=10)
    if failed:
        raise RuntimeError(f"autoanalyze stopped: {failed[0]!r}") from failed[0]
