"""The store of unasked charger messages on SQLite and PostgreSQL, without sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from csms.protocol.notifications import member, notification_of
from csms.store.db import Database
from csms.store.notifications import add_notification, list_notifications

from ..conftest import migrated

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    async with migrated(db_url, ("K1", "K2"), NOW) as database:
        yield database


def _event(charger_id: str, n: int) -> dict[str, object]:
    return {"generatedAt": "2026-12-06T11:00:00Z", "seqNo": n, "eventData": [{"eventId": n}]}


async def test_each_charger_keeps_its_newest_notifications(db: Database) -> None:
    for n in range(5):
        for charger_id in ("K1", "K2"):
            row = notification_of(charger_id, "NotifyEvent", _event(charger_id, n), received_at=NOW)
            async with db.session() as session:
                assert await add_notification(session, row, keep=3)
    async with db.session() as session:
        k1 = await list_notifications(session, charger_id="K1")
        k2 = await list_notifications(session, charger_id="K2", offset=1, limit=1)
        none = await list_notifications(session, charger_id="K1", action="SignCertificate")
    assert [json.loads(r.payload)["seqNo"] for r in k1] == [4, 3, 2]  # newest first, 3 kept
    assert [json.loads(r.payload)["seqNo"] for r in k2] == [3]
    assert none == []
    assert k1[0].occurred_at == datetime(2026, 12, 6, 11, 0, tzinfo=UTC)


async def test_a_deleted_charger_loses_nothing_else(db: Database) -> None:
    row = notification_of("GONE", "NotifyEvent", _event("GONE", 0), received_at=NOW)
    async with db.session() as session:
        assert not await add_notification(session, row, keep=3)


def test_the_members_an_operator_filters_by_are_read_defensively() -> None:
    payload = {"chargingLimit": {"chargingLimitSource": "EMS"}, "eventData": []}
    assert member(payload, "chargingLimit.chargingLimitSource") == "EMS"
    assert member(payload, "eventData.0.trigger") is None
    assert member(payload, None) is None
    odd = notification_of(
        "K1",
        "NotifyEvent",
        {"generatedAt": "not a time", "eventData": [{"trigger": 5}]},
        received_at=NOW,
    )
    assert (odd.occurred_at, odd.status) == (None, None)
    huge = notification_of(
        "K1", "LogStatusNotification", {"status": "Uploaded", "requestId": 2**40}, received_at=NOW
    )
    assert (huge.status, huge.request_id) == ("Uploaded", None)  # the payload keeps it
