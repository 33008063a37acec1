"""``--workers N`` on one PostgreSQL: each worker's pool is sized so that all of them, at their
peak, stay within the server's ``max_connections`` (four workers of 10 + 10 pooled connections
and 5 of their own each passed the default limit of 100 and got "too many clients")."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from config.settings import load_settings
from csms.cli import _prepare, worker_command
from csms.store.db import (
    PG_FIXED_CONNECTIONS,
    PG_HEADROOM,
    PG_MIN_WRITERS,
    ConnectionBudgetError,
    Database,
    fixed_connections,
    server_connection_limits,
    share_connections,
    share_writers,
)
from qrcharge_cli import build_parser


def peak(workers: int, pool: int, overflow: int) -> int:
    return workers * (pool + overflow + PG_FIXED_CONNECTIONS)


def test_the_configured_pool_is_kept_when_it_fits() -> None:
    assert share_connections(100, 3, 1, 10, 10) == (10, 10)
    assert share_connections(100, 3, 2, 10, 10) == (10, 10)
    assert share_connections(1000, 3, 8, 10, 10) == (10, 10)


@pytest.mark.parametrize("workers", [4, 6, 8])
def test_the_pools_shrink_to_fit_max_connections(workers: int) -> None:
    pool, overflow = share_connections(100, 3, workers, 10, 10)
    assert (pool, overflow) != (10, 10)
    assert pool >= 1 and pool + overflow >= 2
    assert peak(workers, pool, overflow) <= 100 - 3 - PG_HEADROOM
    assert abs(pool - overflow) <= 1  # the configured ratio (1:1) is kept


def test_writer_lanes_are_shared_out_among_workers() -> None:
    assert [share_writers(6, n) for n in (1, 2, 3, 4, 8)] == [6, 3, 2, 2, 2]
    assert share_writers(1, 4) == 1  # never more than configured
    assert fixed_connections(PG_MIN_WRITERS) == PG_FIXED_CONNECTIONS


def test_more_writer_lanes_leave_less_for_the_pools() -> None:
    assert share_connections(100, 3, 2, 10, 10, fixed_connections(6)) == (10, 10)
    pool, overflow = share_connections(100, 3, 4, 10, 10, fixed_connections(6))
    assert pool + overflow == 87 // 4 - fixed_connections(6)
    with pytest.raises(ConnectionBudgetError, match="12 more each"):
        share_connections(100, 3, 8, 10, 10, fixed_connections(6))


def test_the_ratio_of_pool_to_overflow_is_kept() -> None:
    pool, overflow = share_connections(100, 3, 4, 15, 5)
    assert overflow >= 1
    assert abs(pool / (pool + overflow) - 15 / 20) < 1 / (pool + overflow)  # to one connection


def test_too_many_workers_for_the_server_are_refused_with_a_reason() -> None:
    with pytest.raises(ConnectionBudgetError, match=r"max_connections=100.*fewer workers"):
        share_connections(100, 3, 16, 10, 10)


@pytest.mark.postgres
def test_the_supervisor_gives_each_worker_the_shrunk_pool(pg_url: str, tmp_path: Path) -> None:
    """The supervisor reads the server's limits and starts each worker with the pool that
    fits (by its environment, which wins over the configuration files)."""

    async def limits() -> tuple[int, int]:
        db = Database.connect(pg_url)
        try:
            return await server_connection_limits(db.engine)
        finally:
            await db.dispose()

    limit, reserved = asyncio.run(limits())
    workers = (limit - reserved - PG_HEADROOM) // (20 + PG_FIXED_CONNECTIONS) + 1  # one too many
    settings = load_settings(data_dir=tmp_path, database_url=pg_url)
    assert (settings.db_pool_size, settings.db_max_overflow) == (10, 10)

    sized = asyncio.run(_prepare(settings, workers))

    pool, overflow = sized.db_pool_size, sized.db_max_overflow
    assert pool + overflow < 20
    assert peak(workers, pool, overflow) <= limit - reserved - PG_HEADROOM
    args = build_parser().parse_args(["csms", "--workers", str(workers)])
    _argv, env = worker_command(args, sized, 1)
    assert (env["QRCHARGE_DB_POOL_SIZE"], env["QRCHARGE_DB_MAX_OVERFLOW"]) == (
        str(pool),
        str(overflow),
    )
    assert workers >= 3 and env["QRCHARGE_DB_WRITER_CONNECTIONS"] == str(PG_MIN_WRITERS)
    alone = asyncio.run(_prepare(settings, 1))
    assert alone.db_pool_size == 10  # one worker: as configured
    assert alone.db_writer_connections == settings.db_writer_connections == 3


@pytest.mark.postgres
def test_the_process_opens_the_configured_writer_lanes(pg_url: str) -> None:
    async def lanes(count: int) -> int:
        db = Database.connect(pg_url, writer_connections=count)
        try:
            return len(db.writers)
        finally:
            await db.dispose()

    assert asyncio.run(lanes(6)) == 6 and asyncio.run(lanes(1)) == 1
