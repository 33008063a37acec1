"""A small world for the order-side service tests: a migrated database (SQLite and
PostgreSQL), the CSMS keys, one charger with a pinned settlement key, a funded driver, a
manual clock, and helpers that sign settlements and report OCPP transactions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlmodel import select

from config.settings import Settings
from csms.drivers.accounts import create_user
from csms.keys import KeyManager
from csms.payments import ledger
from csms.payments.capture import confirm_payment
from csms.payments.orders import OrderRequest, place_order, snapshot
from csms.payments.provider import SandboxProvider
from csms.payments.reaper import Reaper
from csms.payments.receipts import ReceiptTerms
from csms.payments.settlement_service import SettlementService
from csms.payments.top_ups import top_up
from csms.ports import TransactionFacts
from csms.settlement_keys import set_settlement_key
from csms.store.chargers import create_charger
from csms.store.db import MIGRATIONS_DIR, Database, migrate
from csms.store.models import ChargerSync, Transaction
from csms.store.models_orders import Order, Payment, Receipt
from qr_extension.keys import SigningKey, generate_key
from qr_extension.settlement import build_settlement, sign_settlement
from qr_extension.tariff import UsageBucket

from ..conftest import make_settings
from ..ledger_invariants import assert_ledger_consistent
from .invariants import assert_money_consistent

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
FUNDS = 100_000
CHARGER = "CP1"
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()  # the newest migration


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class World:
    db: Database
    settings: Settings
    keys: KeyManager
    clock: Clock
    charger_key: SigningKey
    user_id: int
    service: SettlementService
    reaper: Reaper
    seq: int = 0
    users: list[int] = field(default_factory=list)

    async def new_user(self, funds: int = FUNDS, email: str | None = None) -> int:
        async with self.db.session() as session:
            user = await create_user(
                session,
                email=email or f"u{len(self.users)}@example.org",
                password_hash="x",
                currency="CNY",
            )
            assert user.id is not None
            await session.commit()
        if funds:
            await top_up(
                self.db, user_id=user.id, amount=funds, key=f"t{user.id}",
                provider=SandboxProvider(), now=self.clock(),
            )  # fmt: skip
        self.users.append(user.id)
        return user.id

    async def order(self, *, user_id: int | None = None, evse_id: int = 1, **request: Any) -> Order:
        if not request:
            request = {"amount": 2000}
        placed = await place_order(
            self.db,
            user_id=user_id or self.user_id,
            request=OrderRequest(charger_id=CHARGER, evse_id=evse_id, **request),
            settings=self.settings,
            keys=self.keys,
            now=self.clock(),
        )
        return placed.order

    def settlement(
        self,
        order: Order,
        *,
        wh: int = 10_000,
        txn: str = "000001-abc",
        start_offset: int = 60,
        minutes: int = 30,
        key: SigningKey | None = None,
        **overrides: Any,
    ) -> str:
        """A signed settlement of ``order``: ``wh`` Wh over ``minutes`` of charging."""
        self.seq += 1
        auth = snapshot(order)
        start = auth.issued_at + start_offset
        values: dict[str, Any] = {
            "audience": self.settings.issuer,
            "transaction_id": txn,
            "started_at": start,
            "stopped_at": start + minutes * 60,
            "meter_start_wh": 1000,
            "meter_stop_wh": 1000 + wh,
            "usage": [UsageBucket(0, wh, minutes * 60, 0)],
            "reason": "EVDisconnected",
            "seq": self.seq,
            "offline": True,
            "issued_at": start + minutes * 60,
        }
        values.update(overrides)
        settlement = build_settlement(auth, **values)
        # nobody holds a settlement before its session has ended: the world's clock is at
        # least the time it was signed (the CSMS refuses settlements from its future)
        signed = datetime.fromtimestamp(max(settlement.stopped_at, settlement.issued_at), UTC)
        self.clock.now = max(self.clock.now, signed)
        return sign_settlement(settlement, key or self.charger_key)

    async def transaction(
        self,
        order: Order,
        *,
        transaction_id: str = "000001-abc",
        version: str = "2.0.1",
        wh: int | None = 10_000,
        start_offset: int = 60,
        minutes: int = 30,
        evse_id: int = 1,
    ) -> TransactionFacts:
        """Stores (or finds) the OCPP transaction row of ``order`` and returns its facts."""
        start = order.issued_at + timedelta(seconds=start_offset)
        async with self.db.session() as session:
            row = (
                await session.exec(
                    select(Transaction).where(
                        Transaction.charger_id == CHARGER,
                        Transaction.transaction_id == transaction_id,
                    )
                )
            ).first()
            if row is None:
                row = Transaction(
                    charger_id=CHARGER,
                    transaction_id=transaction_id,
                    ocpp_version=version,
                    evse_id=evse_id,
                    id_tag=order.id,
                    started_at=start,
                    stopped_at=start + timedelta(minutes=minutes),
                    meter_start_wh=1000,
                    meter_stop_wh=None if wh is None else 1000 + wh,
                    state="Ended",
                )
                session.add(row)
                await session.commit()
            assert row.id is not None
            return TransactionFacts(
                charger_id=CHARGER,
                transaction_id=transaction_id,
                transaction_pk=row.id,
                id_tag=order.id,
                evse_id=evse_id,
                started_at=row.started_at,
                stopped_at=row.stopped_at,
                meter_start_wh=row.meter_start_wh,
                meter_stop_wh=row.meter_stop_wh,
                offline=True,
                stop_reason="EVDisconnected",
            )

    async def synced(self, at: datetime | None = None) -> None:
        async with self.db.session() as session:
            row = await session.get(ChargerSync, CHARGER)
            if row is None:
                row = ChargerSync(charger_id=CHARGER, last_seq=self.seq)
            row.updated_at = at or self.clock()
            session.add(row)
            await session.commit()

    async def reload(self, order: Order) -> Order:
        async with self.db.session() as session:
            fresh = await session.get(Order, order.id)
            assert fresh is not None
            return fresh

    async def payments(self, order: Order) -> list[Payment]:
        async with self.db.session() as session:
            rows = await session.exec(select(Payment).where(Payment.order_id == order.id))
            return list(rows.all())

    async def confirm(self, payment_id: int, user_id: int | None = None) -> Receipt:
        return await confirm_payment(
            self.db,
            payment_id=payment_id,
            kind="driver",
            now=self.clock(),
            terms=ReceiptTerms.from_settings(self.settings),
            user_id=user_id,
        )

    async def available(self, user_id: int | None = None) -> int:
        async with self.db.session() as session:
            return await ledger.available(session, user_id or self.user_id)

    async def flags(self, order: Order) -> set[str]:
        from csms.store.orders import flags_of

        async with self.db.session() as session:
            return {f.kind for f in await flags_of(session, order_id=order.id)}


async def _empty_pg(url: str) -> None:
    """Empties the session's PostgreSQL database: TRUNCATE when it is already migrated to
    this head (fast), else a fresh schema (the CSMS tests share the database)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        head = await conn.fetchval(
            "SELECT version_num FROM alembic_version LIMIT 1"
            if await conn.fetchval("SELECT to_regclass('public.alembic_version')")
            else "SELECT NULL"
        )
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
            if r["tablename"] != "alembic_version"
        ]
        if head == HEAD and tables:
            names = ", ".join(f'"{t}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        else:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


@pytest.fixture
async def postgres_url(pg_url: str) -> AsyncIterator[str]:
    """The session's PostgreSQL database, emptied: for a module whose ``db_url`` is it alone
    (races of units running side by side; on SQLite they run one after the other)."""
    await _empty_pg(pg_url)
    yield pg_url


class Meanwhile:
    """For a read patched inside a unit (in its database thread): called there, runs
    ``start()`` to its end on the test's event loop the first time, so that another unit
    commits between that unit's reads; later calls do nothing. ``ran``: whether it did."""

    def __init__(self, start: Callable[[], Awaitable[Any]]) -> None:
        self._start = start
        self._loop = asyncio.get_running_loop()
        self.ran = False

    def __call__(self) -> None:
        if not self.ran:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=20)
            self.ran = True


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """As tests/csms/conftest.py's, but PostgreSQL is emptied by TRUNCATE when it can be."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}"
        return
    url: str = request.getfixturevalue("pg_url")
    await _empty_pg(url)
    yield url


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    settings = make_settings(tmp_path, auto_capture_s=600, offline_limit_s=3600)
    db = Database.connect(db_url)
    await migrate(db.engine)
    clock = Clock()
    keys = KeyManager.open(
        tmp_path / "keys",
        now=int(T0.timestamp()) - 10,
        prepublish_s=settings.key_prepublish_s,
        token_lifetime_s=1200,
    )
    charger_key = generate_key()
    async with db.session() as session:
        await create_charger(session, charger_id=CHARGER, password_hash=None, evses=2, now=T0)
    await set_settlement_key(
        db, charger_id=CHARGER, jwk=json.loads(json.dumps(charger_key.public.to_jwk())), now=T0
    )
    service = SettlementService(db, settings=settings, clock=clock)
    reaper = Reaper(db, settings=settings, clock=clock)
    w = World(db, settings, keys, clock, charger_key, 0, service, reaper)
    w.user_id = await w.new_user()
    try:
        yield w
        await assert_money_consistent(db)
        async with db.session() as session:
            await assert_ledger_consistent(session)
    finally:
        await db.dispose()
