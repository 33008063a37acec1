"""The PostgreSQL pool hands out only live connections, without a round trip per checkout."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import event, text

from csms.store.db import make_engine

pytestmark = pytest.mark.postgres


async def test_a_connection_the_server_closed_is_replaced_at_checkout(pg_url: str) -> None:
    engine = make_engine(pg_url)
    statements: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: statements.append(statement),
    )
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        admin = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        for _ in range(50):  # the event loop sees the socket close
            await asyncio.sleep(0.02)
        async with engine.connect() as conn:  # the pooled one is dead: another, no error
            again = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert again != pid
        # no ping statements: the two SELECTs are all that was sent
        assert statements == ["SELECT pg_backend_pid()"] * 2
    finally:
        await engine.dispose()
