"""The reservations the CSMS keeps, on SQLite and PostgreSQL, without sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from csms.store import reservations as store
from csms.store.db import Database
from csms.store.models import Reservation, ReservationPublic

from ..conftest import migrated

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=30)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    async with migrated(db_url, ("R1", "R2"), NOW) as database:
        yield database


def _row(charger_id: str, reservation_id: int, token: str = "TAG", **kw: object) -> Reservation:
    values: dict[str, object] = {
        "charger_id": charger_id,
        "reservation_id": reservation_id,
        "evse_id": 1,
        "id_token": token,
        "expires_at": LATER,
        "state": "requested",
        "created_at": NOW,
        "updated_at": NOW,
        **kw,
    }
    return Reservation(**values)  # type: ignore[arg-type]


async def _states(db: Database, charger_id: str, **kw: object) -> dict[int, str]:
    async with db.session() as session:
        rows = await store.list_reservations(session, charger_id=charger_id, now=NOW, **kw)  # type: ignore[arg-type]
    return {r.reservation_id: r.state for r in rows}


async def test_a_reservation_from_request_to_use(db: Database) -> None:
    async with db.session() as session:
        assert await store.record_request(session, _row("R1", 7))
        assert await store.record_request(session, _row("R2", 7))  # ids are per charger
        await store.record_answer(
            session, charger_id="R1", reservation_id=7, answer="Accepted", accepted=True, now=NOW
        )
    assert await _states(db, "R1") == {7: "active"}
    async with db.session() as session:
        assert await store.end(
            session, charger_id="R1", reservation_id=7, state="used", now=NOW, transaction_id="42"
        )
        # a late expiry, or a second use, does not change a finished reservation
        assert not await store.end(
            session, charger_id="R1", reservation_id=7, state="expired", now=NOW
        )
        rows = await store.list_reservations(session, charger_id="R1", now=NOW)
    assert [(r.state, r.transaction_id, r.answer) for r in rows] == [("used", "42", "Accepted")]
    assert await _states(db, "R2") == {7: "requested"}


async def test_the_same_id_replaces_the_reservation(db: Database) -> None:
    async with db.session() as session:
        assert await store.record_request(session, _row("R1", 3, "OLD"))
        await store.record_answer(
            session, charger_id="R1", reservation_id=3, answer="Accepted", accepted=True, now=NOW
        )
        assert await store.record_request(session, _row("R1", 3, "NEW", evse_id=None))
        rows = await store.list_reservations(session, charger_id="R1", now=NOW)
    assert [(r.id_token, r.evse_id, r.state, r.answer) for r in rows] == [
        ("NEW", None, "requested", None)
    ]


async def test_expired_by_time_and_the_state_filter(db: Database) -> None:
    async with db.session() as session:
        for rid, expires in ((1, NOW - timedelta(seconds=1)), (2, LATER)):
            assert await store.record_request(session, _row("R1", rid, expires_at=expires))
            await store.record_answer(
                session,
                charger_id="R1",
                reservation_id=rid,
                answer="Accepted",
                accepted=True,
                now=NOW,
            )
        assert await store.record_request(session, _row("R1", 3))
        await store.record_answer(
            session, charger_id="R1", reservation_id=3, answer="Occupied", accepted=False, now=NOW
        )
        rows = await store.list_reservations(session, charger_id="R1", now=NOW)
    public = {r.reservation_id: ReservationPublic.of(r, now=NOW).state for r in rows}
    assert public == {1: "expired", 2: "active", 3: "refused"}
    assert await _states(db, "R1", state="expired") == {1: "active"}  # stored active, past expiry
    assert set(await _states(db, "R1", state="active")) == {2}
    assert set(await _states(db, "R1", state="refused")) == {3}
    assert set(await _states(db, "R1", limit=1)) == {3}  # newest first


async def test_a_deleted_charger_keeps_no_reservation(db: Database) -> None:
    async with db.session() as session:
        assert not await store.record_request(session, _row("GONE", 1))
