"""The store of locally known RFID tags on SQLite and PostgreSQL, without sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from csms.store.db import Database
from csms.store.id_tags import delete_id_tag, put_id_tag, tag_row

from .conftest import migrated

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    async with migrated(db_url, (), NOW) as database:
        yield database


async def test_a_tag_is_created_changed_read_and_deleted(db: Database) -> None:
    async with db.session() as session:
        created = await put_id_tag(session, id_tag="CARD", status="Accepted", expiry=None, now=NOW)
    assert await db.reader.run(tag_row, "CARD") == ("Accepted", None)
    expiry = NOW + timedelta(days=30)
    later = NOW + timedelta(hours=1)
    async with db.session() as session:
        changed = await put_id_tag(
            session, id_tag="CARD", status="Blocked", expiry=expiry, now=later
        )
    assert changed.created_at == created.created_at == NOW  # a change keeps the creation time
    assert await db.reader.run(tag_row, "CARD") == ("Blocked", expiry)
    async with db.session() as session:
        assert await delete_id_tag(session, id_tag="CARD")
        assert not await delete_id_tag(session, id_tag="CARD")
    assert await db.reader.run(tag_row, "CARD") is None
