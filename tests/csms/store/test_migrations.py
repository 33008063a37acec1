"""Alembic migrations from an empty database produce exactly the models' schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

import csms.store.models  # noqa: F401
from csms.protocol.retransmission import earlier, event_digest
from csms.protocol.transactions import TransactionEvent
from csms.store.db import Database, alembic_config, migrate
from csms.store.models import TransactionEventRecord
from csms.store.models_orders import SettlementRejection
from csms.store.types import UtcDateTime
from csms.store.writer import table_of


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


def _to(connection: Connection, revision: str, *, down: bool = False) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(cfg, revision)


def _legacy_event(connection: Connection) -> None:
    """A charger and a 2.0.1 event as revision 0005 stored them (no digest)."""
    at = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    chargers = sa.table(
        "chargers",
        sa.column("id"),
        sa.column("registration"),
        sa.column("online"),
        sa.column("created_at", UtcDateTime),
    )
    connection.execute(
        chargers.insert().values(id="M1", registration="operator", online=False, created_at=at)
    )
    connection.execute(
        _EVENTS_0005.insert().values(
            charger_id="M1",
            transaction_id="T-1",
            seq_no=0,
            event_type="Started",
            trigger_reason="Authorized",
            timestamp=at,
            offline=False,
            response='{"status": "Accepted", "expiry": null}',
            received_at=at,
        )
    )


_EVENTS_0005 = sa.table(
    "transaction_events",
    *(sa.column(name) for name in ("charger_id", "transaction_id", "seq_no", "event_type")),
    *(sa.column(name) for name in ("trigger_reason", "offline", "response")),
    sa.column("timestamp", UtcDateTime),
    sa.column("received_at", UtcDateTime),
)


def _event(event_type: str) -> TransactionEvent:
    return TransactionEvent(
        event_type=event_type,
        timestamp=datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
        trigger_reason="Authorized",
        seq_no=0,
        transaction_id="T-1",
    )


def _add_event(connection: Connection, digest: str) -> None:
    values = {"charger_id": "M1", "transaction_id": "T-1", "seq_no": 0, "digest": digest}
    at = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    connection.execute(
        table_of(TransactionEventRecord)
        .insert()
        .values(
            **values,
            event_type="Ended",
            trigger_reason="EVDeparted",
            timestamp=at,
            offline=False,
            response="{}",
            received_at=at,
        )
    )


async def test_event_digests_keep_old_events_and_allow_a_reused_seq_no(db_url: str) -> None:
    """0006 on a database with events: the old row is still found as the same event, a
    different event under its seqNo can be stored beside it (once), and a downgrade keeps
    the first event under each seqNo."""
    db = Database.connect(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to, "0005")
            await conn.run_sync(_legacy_event)
        await migrate(db.engine)
        started, ended = _event("Started"), _event("Ended")
        async with db.engine.begin() as conn:
            same = await conn.run_sync(earlier, "M1", started, event_digest(started))
            other = await conn.run_sync(earlier, "M1", ended, event_digest(ended))
            await conn.run_sync(_add_event, event_digest(ended))
        assert same.answer == '{"status": "Accepted", "expiry": null}'
        assert (other.answer, list(other.others)) == (None, ["Started"])
        with pytest.raises(IntegrityError):
            async with db.engine.begin() as conn:
                await conn.run_sync(_add_event, event_digest(ended))
        async with db.engine.begin() as conn:
            again = await conn.run_sync(earlier, "M1", ended, event_digest(ended))
            assert again.answer == "{}"
            await conn.run_sync(_to, "0005", down=True)
            rows = (await conn.execute(sa.select(_EVENTS_0005.c.event_type))).all()
            assert [r[0] for r in rows] == ["Started"]
        await migrate(db.engine)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()


_REJECTIONS_0007 = sa.table(
    "settlement_rejections",
    *(sa.column(name) for name in ("charger_id", "order_id", "source", "reason", "detail")),
    sa.column("token_sha256"),
    sa.column("created_at", UtcDateTime),
)
_INBOX = sa.table(
    "settlement_inbox",
    *(sa.column(name) for name in ("charger_id", "token", "token_sha256", "source")),
    sa.column("received_at", UtcDateTime),
)


def _legacy_rejections(connection: Connection) -> None:
    """Refusals as revision 0007 stored them: a row per copy, the token in the inbox."""
    at = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    for minute, digest in ((0, "a" * 64), (5, "a" * 64), (9, "a" * 64), (7, "b" * 64)):
        connection.execute(
            _REJECTIONS_0007.insert().values(
                charger_id="M1", order_id="O1", source="upload", reason="bad_signature",
                detail="signature does not verify", token_sha256=digest,
                created_at=at.replace(minute=minute),
            )
        )  # fmt: skip
    connection.execute(
        _INBOX.insert().values(
            charger_id="M1", token="x" * 5000, token_sha256="a" * 64, source="upload",
            received_at=at,
        )
    )  # fmt: skip


async def test_rejections_are_merged_into_counted_rows(db_url: str) -> None:
    """0009 on a database with a refusal stored three times: one row with count 3 and its
    first and last time, the token's head from the inbox; the other refusal stays apart."""
    db = Database.connect(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to, "0008")
            await conn.run_sync(_legacy_rejections)
        await migrate(db.engine)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            rows = (
                await conn.execute(
                    sa.select(SettlementRejection).order_by(SettlementRejection.token_sha256)
                )
            ).all()
        at = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
        got = [
            (r.token_sha256[0], r.count, r.created_at, r.last_at, r.token_chars, r.user_id)
            for r in rows
        ]
        assert got == [
            ("a", 3, at, at.replace(minute=9), 5000, 0),
            ("b", 1, at.replace(minute=7), at.replace(minute=7), 0, 0),
        ]
        assert rows[0].token_head == "x" * 4096 and rows[1].token_head == ""
    finally:
        await db.dispose()
