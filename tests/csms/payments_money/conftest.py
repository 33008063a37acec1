"""Fixtures of the money tests: a migrated database and the CSMS app with the money routes,
both on SQLite and PostgreSQL (``db_url`` of tests/csms/conftest.py), and a manual clock.

The app runs in-process (its lifespan entered directly, httpx over ASGI): no port, fast.
Tests that need a real OCPP connection use ``serve`` from tests/csms/conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from config.settings import Settings
from csms.app import create_app, server_config
from csms.context import CsmsContext
from csms.ports import PaymentProvider
from csms.store.db import Database, migrate

from ..conftest import ADMIN_KEY, make_settings
from ..ledger_invariants import assert_ledger_consistent

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
PASSWORD = "s3cret-enough"
# Request validation does not depend on the database: such tests run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


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
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database on each backend (overrides tests/csms's: PostgreSQL is emptied with
    DELETE instead of a new schema; the other tests that share it drop the schema, and
    migrating again brings it back)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'money.db'}"
        return
    url: str = request.getfixturevalue("pg_url")
    await _empty_pg(url)
    yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated database; the ledger invariants are checked when the test is done."""
    database = Database.connect(db_url)
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

    async def register(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        r = await self.http.post("/api/v1/users", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
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
def money_settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, database_url=db_url)


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
