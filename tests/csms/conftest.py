"""Fixtures of the CSMS tests: databases on both backends, a live server, and the money side
in-process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from config.settings import Settings
from csms.app import create_app, server_config
from csms.context import CsmsContext
from csms.ports import PaymentProvider
from csms.store import chargers
from csms.store.db import Database, migrate

from .ledger_invariants import assert_ledger_consistent

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


# --- the money side in-process --------------------------------------------------------------
# A migrated database and the CSMS app with the money routes, both on SQLite and PostgreSQL, and
# a manual clock. The app runs in-process (its lifespan entered directly, httpx over ASGI): no
# port, fast. Tests that need a real OCPP connection use ``serve_money`` or ``serve``.


T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
DRIVER_PASSWORD = "s3cret-enough"
# Request validation does not depend on the database: such tests run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("money_db_url", ["sqlite"], indirect=True)


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def _empty_pg(url: str) -> None:
    """Brings the session database to the newest schema (a no-op when it is there already)
    and empties every table: much cheaper than dropping the schema and migrating again.
    Ids are not reset: tests must not rely on them."""
    database = Database.connect(url)
    try:
        await migrate(database.engine)
        async with database.engine.begin() as conn:
            names = (
                await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            ).scalars()
            # DELETE with foreign-key triggers off: TRUNCATE costs about a second here
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            for name in list(names):
                await conn.execute(text(f'DELETE FROM "{name}"'))
    finally:
        await database.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def money_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database on each backend for the money fixtures (as ``db_url``, but PostgreSQL
    is emptied with DELETE instead of a new schema; the other tests that share it drop the
    schema, and migrating again brings it back)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'money.db'}"
        return
    url: str = request.getfixturevalue("pg_url")
    await _empty_pg(url)
    yield url


@pytest.fixture
async def db(money_db_url: str) -> AsyncIterator[Database]:
    """A migrated database; the ledger invariants are checked when the test is done."""
    database = Database.connect(money_db_url)
    await migrate(database.engine)
    try:
        yield database
        async with database.session() as session:
            await assert_ledger_consistent(session)
    finally:
        await database.dispose()


@dataclass
class MoneyApi:
    """The CSMS app in-process: an admin client, a driver client factory, the context."""

    app: FastAPI
    http: httpx.AsyncClient
    clock: Clock
    settings: Settings
    drivers: dict[str, str] = field(default_factory=dict)

    @property
    def ctx(self) -> CsmsContext:
        ctx: CsmsContext = self.app.state.ctx
        return ctx

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    async def register(self, email: str, password: str = DRIVER_PASSWORD) -> dict[str, Any]:
        r = await self.http.post("/api/v1/users", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def login(self, email: str, password: str = DRIVER_PASSWORD) -> dict[str, str]:
        r = await self.http.post("/api/v1/token", data={"username": email, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def driver(self, email: str, funds: int = 0) -> tuple[int, dict[str, str]]:
        """A registered, logged-in driver with ``funds`` topped up: (user id, auth headers)."""
        user = await self.register(email)
        auth = await self.login(email)
        if funds:
            r = await self.http.post(
                "/api/v1/me/wallet/top-ups", json={"amount": funds}, headers=auth
            )
            assert r.status_code == 201, r.text
        return int(user["id"]), auth

    async def add_charger(
        self, charger_id: str, *, evses: int = 2, location: str | None = None
    ) -> None:
        body: dict[str, Any] = {"id": charger_id, "password": "charger-pass", "evses": evses}
        if location is not None:
            body["location"] = location
        r = await self.http.post("/api/v1/admin/chargers", json=body, headers=self.admin())
        assert r.status_code == 201, r.text


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def money_settings(tmp_path: Path, money_db_url: str) -> Settings:
    return make_settings(tmp_path, database_url=money_db_url)


@contextlib.asynccontextmanager
async def open_api(
    settings: Settings, clock: Clock, *, payment_provider: PaymentProvider | None = None
) -> AsyncIterator[MoneyApi]:
    """The app over ASGI (no socket); the ledger is checked when it closes."""
    app = create_app(settings, clock=clock, payment_provider=payment_provider)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://csms") as http:
            yield MoneyApi(app, http, clock, settings)
        ctx: CsmsContext = app.state.ctx
        async with ctx.db.session() as session:
            await assert_ledger_consistent(session)


@pytest.fixture
async def api(money_settings: Settings, clock: Clock) -> AsyncIterator[MoneyApi]:
    async with open_api(money_settings, clock) as opened:
        yield opened


@contextlib.asynccontextmanager
async def serve_money(settings: Settings, clock: Clock) -> AsyncIterator[tuple[MoneyApi, int]]:
    """The app with the money routes served by uvicorn on 127.0.0.1:<free port> (for tests
    with a real OCPP connection): (the API handle, the port)."""
    app = create_app(settings, clock=clock)
    server = uvicorn.Server(server_config(settings, app, port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield MoneyApi(app, http, clock, settings), port
    finally:
        server.should_exit = True
        await task
