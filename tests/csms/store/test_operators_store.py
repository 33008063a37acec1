"""Operator accounts, their sessions and the audit log in the database (SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from csms.operators import accounts
from csms.operators.errors import LastAdmin, OperatorNameTaken
from csms.store import audit
from csms.store import operators as store
from csms.store.db import Database, migrate

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database.connect(db_url)
    await migrate(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


async def test_names_are_unique(db: Database) -> None:
    async with db.session() as s:
        await store.add_operator(s, name="ann", role="admin", password_hash="h", now=T0)
        with pytest.raises(IntegrityError):
            await store.add_operator(s, name="ann", role="viewer", password_hash="h", now=T0)
        await s.rollback()
        with pytest.raises(OperatorNameTaken):
            await accounts.create_operator(
                s, name=" ANN ", password="p" * 12, role="viewer", now=T0
            )


async def test_the_role_is_checked_by_the_database(db: Database) -> None:
    async with db.session() as s:
        with pytest.raises(IntegrityError):
            await store.add_operator(s, name="bo", role="root", password_hash="h", now=T0)


async def test_a_session_lives_until_it_expires_ends_or_its_account_is_disabled(
    db: Database,
) -> None:
    async with db.session() as s:
        row = await store.add_operator(s, name="cy", role="operator", password_hash="h", now=T0)
        assert row.id is not None
        for token in ("a", "b", "c"):
            await store.add_session(
                s, operator_id=row.id, token_hash=token, now=T0, expires_at=T0 + HOUR
            )
        found = await store.session_operator(s, token_hash="a", now=T0)
        assert found is not None and found.name == "cy"
        assert await store.session_operator(s, token_hash="a", now=T0 + HOUR) is None
        assert await store.session_operator(s, token_hash="zzz", now=T0) is None
        await store.end_session(s, token_hash="a")
        assert await store.session_operator(s, token_hash="a", now=T0) is None
        assert await store.session_operator(s, token_hash="b", now=T0) is not None
        row.disabled = True
        s.add(row)
        await s.commit()
        assert await store.session_operator(s, token_hash="b", now=T0) is None
        await store.end_sessions_of(s, operator_id=row.id)
        await s.commit()
        row.disabled = False
        s.add(row)
        await s.commit()
        assert await store.session_operator(s, token_hash="c", now=T0) is None


async def test_a_new_session_forgets_the_expired_ones(db: Database) -> None:
    async with db.session() as s:
        row = await store.add_operator(s, name="di", role="viewer", password_hash="h", now=T0)
        assert row.id is not None
        await store.add_session(
            s, operator_id=row.id, token_hash="old", now=T0, expires_at=T0 + HOUR
        )
        later = T0 + 2 * HOUR
        await store.add_session(
            s, operator_id=row.id, token_hash="new", now=later, expires_at=later + HOUR
        )
        await store.end_session(s, token_hash="new")
        await store.end_sessions_of(s, operator_id=row.id)  # nothing left to end
        # the expired row went with the second sign-in: the token cannot come back
        assert await store.session_operator(s, token_hash="old", now=T0) is None


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(db: Database) -> None:
    async with db.session() as s:
        for name in ("eve", "fay"):
            await store.add_operator(s, name=name, role="admin", password_hash="h", now=T0)

    async def demote(name: str) -> str:
        async with db.session() as s:
            await accounts.update_operator(s, name, role="viewer")
        return name

    results = await asyncio.gather(demote("eve"), demote("fay"), return_exceptions=True)
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1, results
    # PostgreSQL waits on the locked rows and then sees the other demoted; SQLite's single
    # writer may refuse the late transaction outright
    assert isinstance(refused[0], LastAdmin | OperationalError)
    async with db.session() as s:
        assert await store.count_enabled_admins(s) == 1


async def test_a_demotion_waits_for_another_that_holds_the_admins(db: Database) -> None:
    """The other transaction holds the admins (read, not yet written) while a demotion starts:
    the demotion must see the first one's change, not the count read before it committed."""
    async with db.session() as s:
        for name in ("eve", "fay"):
            await store.add_operator(s, name=name, role="admin", password_hash="h", now=T0)

    async def demote_fay() -> None:
        async with db.session() as s:
            await accounts.update_operator(s, "fay", role="viewer")

    async with db.session() as first:
        assert sorted(await store.lock_enabled_admins(first)) == ["eve", "fay"]
        second = asyncio.create_task(demote_fay())
        await asyncio.sleep(0.3)  # the second demotion reads (or waits) meanwhile
        eve = await store.operator_by_name(first, "eve", for_update=True)
        assert eve is not None
        eve.role = "viewer"
        first.add(eve)
        await first.commit()
    with pytest.raises(LastAdmin):
        await second
    async with db.session() as s:
        assert await store.count_enabled_admins(s) == 1


async def test_audit_records_page_newest_first_and_by_actor(db: Database) -> None:
    async with db.session() as s:
        for n in range(5):
            await audit.add_record(
                s,
                at=T0 + timedelta(seconds=n),
                actor="api_key" if n % 2 else "gus",
                actor_kind="api_key" if n % 2 else "user",
                action="POST /api/v1/admin/orders/{order_id}/cancel",
                target=f"order_id=O-{n}",
                status_code=200,
                detail="cancel order",
            )
        newest = await audit.records(s, limit=2)
        assert [r.target for r in newest] == ["order_id=O-4", "order_id=O-3"]
        assert newest[0].at == T0 + timedelta(seconds=4)
        older = await audit.records(s, limit=10, before=newest[-1].id)
        assert [r.target for r in older] == ["order_id=O-2", "order_id=O-1", "order_id=O-0"]
        gus = await audit.records(s, limit=10, actor="gus")
        assert [r.target for r in gus] == ["order_id=O-4", "order_id=O-2", "order_id=O-0"]
