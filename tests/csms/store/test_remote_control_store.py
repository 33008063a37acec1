"""The remote-control store on SQLite and PostgreSQL: the status history bounded per charger,
charging profiles replaced and cleared as OCPP says, an upload claimed exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from csms.store import remote_control as store
from csms.store.db import Database
from csms.store.models_remote import ChargerStatusReport, ChargerUpload, ChargingProfileRecord

from ..conftest import migrated

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    async with migrated(db_url, ("R1", "R2"), NOW) as database:
        yield database


def _report(charger: str, status: str, request_id: int | None = None) -> ChargerStatusReport:
    return ChargerStatusReport(
        charger_id=charger,
        kind="firmware",
        action="FirmwareStatusNotification",
        status=status,
        request_id=request_id,
        received_at=NOW,
    )


async def test_the_status_history_is_bounded_and_gives_the_newest_request(db: Database) -> None:
    async with db.session() as session:
        for n in range(6):
            assert await store.add_status_report(session, _report("R1", f"S{n}", n), keep=4)
        assert await store.add_status_report(session, _report("R2", "Other", 77), keep=4)
        assert not await store.add_status_report(session, _report("GONE", "X"), keep=4)
    async with db.session() as session:
        rows = await store.list_status_reports(session, charger_id="R1", kind="firmware")
        assert [r.status for r in rows] == ["S5", "S4", "S3", "S2"]
        assert await store.latest_request_id(session, charger_id="R1", kind="firmware") == 5
        assert await store.latest_request_id(session, charger_id="R1", kind="log") is None


def _profile(
    pid: int, evse: int, level: int, purpose: str = "TxDefaultProfile"
) -> ChargingProfileRecord:
    return ChargingProfileRecord(
        charger_id="R1",
        evse_id=evse,
        profile_id=pid,
        stack_level=level,
        purpose=purpose,
        profile="{}",
        set_at=NOW,
    )


async def test_profiles_are_replaced_and_cleared(db: Database) -> None:
    async with db.session() as session:
        await store.add_profile(session, _profile(1, 1, 0))
        await store.add_profile(session, _profile(2, 1, 1))
        await store.add_profile(session, _profile(3, 1, 0))  # same slot as 1: replaces it
        await store.add_profile(session, _profile(2, 2, 5))  # same id as 2: replaces it
        assert await store.add_profile(session, _profile(4, 0, 0, "ChargePointMaxProfile"))
        gone = _profile(5, 1, 0)
        gone.charger_id = "GONE"
        assert not await store.add_profile(session, gone)
    async with db.session() as session:
        active = await store.list_profiles(session, charger_id="R1", active_only=True)
        assert sorted((p.profile_id, p.evse_id) for p in active) == [(2, 2), (3, 1), (4, 0)]
        later = NOW + timedelta(minutes=1)
        n = await store.clear_profiles(
            session, charger_id="R1", at=later, purpose="TxDefaultProfile", evse_id=2
        )
        assert n == 1
        assert await store.clear_profiles(session, charger_id="R1", at=later, profile_id=9) == 0
        assert await store.clear_profiles(session, charger_id="R1", at=later) == 2
    async with db.session() as session:
        rows = await store.list_profiles(session, charger_id="R1", active_only=False)
        assert [(r.profile_id, r.cleared_by) for r in rows] == [
            (4, "ClearChargingProfile"),
            (2, "ClearChargingProfile"),
            (3, "ClearChargingProfile"),
            (2, "replaced"),
            (1, "replaced"),
        ]
        assert await store.list_profiles(session, charger_id="R1", active_only=True) == []


async def test_an_upload_is_claimed_once(db: Database) -> None:
    async with db.session() as session:
        slot_id = await store.add_upload_slot(
            session,
            ChargerUpload(
                charger_id="R1",
                token_hash="a" * 64,
                action="GetLog",
                request_id=3,
                created_at=NOW,
                expires_at=NOW + timedelta(days=1),
            ),
        )
        assert await store.list_uploads(session, charger_id="R1") == []

    async def claim(name: str) -> bool:
        async with db.session() as session:
            return await store.claim_upload(
                session, slot_id=slot_id, name=name, size=3, sha256="b" * 64, at=NOW
            )

    results = await asyncio.gather(claim("one"), claim("two"))
    assert sorted(results) == [False, True]
    async with db.session() as session:
        (row,) = await store.list_uploads(session, charger_id="R1")
        assert row.size == 3 and row.name in ("one", "two")
        assert await store.get_upload(session, charger_id="R2", file_id=slot_id) is None
        found = await store.upload_slot(session, charger_id="R1", token_hash="a" * 64)
        assert found is not None and found.id == slot_id
        assert await store.upload_slot(session, charger_id="R2", token_hash="a" * 64) is None
