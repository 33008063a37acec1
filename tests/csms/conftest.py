"""Fixtures of the CSMS tests: databases on both backends and a live server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _run_aside(coro: Coroutine[Any, Any, None]) -> None:
    """Runs a coroutine to completion on its own loop in a thread (fixtures may be set up
    from inside a running test loop)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for this test session, dropped at the end."""
    name = f"qrcharge_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _run_aside(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        _run_aside(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _reset_pg(url: str) -> None:
    dsn = url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database on each backend (PostgreSQL: the session database, emptied)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}"
        return
    url: str = request.getfixturevalue("pg_url")
    await _reset_pg(url)
    yield url
