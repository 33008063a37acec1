"""Alembic environment: runs on a connection handed in by :func:`csms.store.db.migrate`, or
on the URL of ``alembic.ini`` / ``-x url=...`` when run from the ``alembic`` command."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

# importing the model modules registers their tables on SQLModel.metadata
import csms.store.models
import csms.store.models_money  # drivers, billing, ledger
import csms.store.models_operators  # operator accounts, the audit log
import csms.store.models_orders  # orders, settlements, payments
import csms.store.models_remote  # noqa: F401  (firmware/log statuses, profiles, uploads)
from csms.store.db import make_engine

target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


def main() -> None:
    given = context.config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set sqlalchemy.url")
    asyncio.run(_run_online(url))


main()
