"""Fixtures of the CSMS tests: databases on both backends and a live server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from config.settings import Settings
from csms.app import create_app, server_config
from csms.context import CsmsContext
from csms.store import chargers
from csms.store.db import Database, migrate

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "correct-horse-battery"
ADMIN_KEY = "test-admin-key"


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


# --- a live CSMS ----------------------------------------------------------------------------


@dataclass
class LiveCsms:
    """A CSMS served by uvicorn on 127.0.0.1:<free port> inside the test's event loop."""

    app: FastAPI
    port: int
    http: httpx.AsyncClient

    @property
    def ctx(self) -> CsmsContext:
        ctx: CsmsContext = self.app.state.ctx
        return ctx

    def ws_url(self, charger_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp/{charger_id}"

    async def driver(self, email: str = "d@example.org") -> dict[str, str]:
        """Signs a new driver up and in; the bearer header of its access token."""
        password = "long-pw-1"
        r = await self.http.post("/api/v1/users", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        r = await self.http.post("/api/v1/token", data={"username": email, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def add_charger(self, charger_id: str, password: str = PASSWORD, evses: int = 2) -> None:
        r = await self.http.post(
            "/api/v1/admin/chargers", json={"id": charger_id, "password": password, "evses": evses}
        )
        assert r.status_code == 201, r.text


@contextlib.asynccontextmanager
async def migrated(
    db_url: str, charger_ids: tuple[str, ...], now: datetime
) -> AsyncIterator[Database]:
    """A migrated database at ``db_url`` with the chargers ``charger_ids`` registered."""
    database = Database.connect(db_url)
    await migrate(database.engine)
    async with database.session() as session:
        for charger_id in charger_ids:
            await chargers.create_charger(
                session, charger_id=charger_id, password_hash=None, now=now
            )
    try:
        yield database
    finally:
        await database.dispose()


def basic_auth(charger_id: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{charger_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "admin_api_key": ADMIN_KEY,
        "ocpp_call_timeout_s": 3,
        "heartbeat_interval_s": 120,
        **overrides,
    }
    return Settings(**values)


@contextlib.asynccontextmanager
async def serve(
    settings: Settings, *, tls: ssl.SSLContext | None = None, **app_options: Any
) -> AsyncIterator[LiveCsms]:
    app = create_app(settings, **app_options)
    server = uvicorn.Server(server_config(settings, app, port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(
            base_url=f"{'https' if tls else 'http'}://127.0.0.1:{port}",
            verify=tls if tls is not None else True,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10,
        ) as http:
            yield LiveCsms(app, port, http)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[LiveCsms]:
    async with serve(make_settings(tmp_path)) as live:
        yield live


@pytest.fixture
async def pg_csms(tmp_path: Path, pg_url: str) -> AsyncIterator[LiveCsms]:
    """A live CSMS on the (emptied) session PostgreSQL database."""
    await _reset_pg(pg_url)
    async with serve(make_settings(tmp_path, database_url=pg_url)) as live:
        yield live
