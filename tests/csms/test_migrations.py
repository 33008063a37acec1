"""Alembic migrations from an empty database produce exactly the models' schema."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import csms.store.models  # noqa: F401
from csms.store.db import Database, migrate


def _diff(connection: Connection) -> list[Any]:
    ctx = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(ctx, SQLModel.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_from_empty_matches_models(db_url: str) -> None:
    db = Database.connect(db_url)
    try:
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()
        await migrate(db.engine)
        await migrate(db.engine)  # idempotent: a restart migrates nothing
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(_tables)
            diff = await conn.run_sync(_diff)
        assert {"chargers", "transactions", "meter_values", "alembic_version"} <= tables
        assert diff == []
    finally:
        await db.dispose()
