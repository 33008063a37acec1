"""Migration 0013 on a database with receipts: they get numbers in the order they were issued,
their order's tariff and EVSE and their charger's location; the series continues from them;
a downgrade and a new upgrade leave the models' schema."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from csms.store.db import Database, migrate
from csms.store.receipts import next_seq
from csms.store.types import UtcDateTime

from .test_migrations import _diff, _to

AT = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
TAR = '["DEFAULT","CNY",0,12000,3000]'


def _table(name: str, *columns: str, times: tuple[str, ...] = ()) -> sa.TableClause:
    return sa.table(
        name, *(sa.column(c) for c in columns), *(sa.column(t, UtcDateTime) for t in times)
    )


_CHARGERS = _table("chargers", "id", "registration", "online", "location", times=("created_at",))
_ORDERS = _table(
    "orders",
    *("id", "user_id", "charger_id", "evse_id", "status", "request_kind", "tariff_claim"),
    *("limits_claim", "hold_amount", "currency", "start_token", "kid"),
    times=("issued_at", "expires_at", "created_at", "updated_at"),
)
_RECORDS = _table(
    "settlements",
    *("id", "order_id", "charger_id", "session_no", "first_source", "offline"),
    *("charge_amount", "disagreement"),
    times=("verified_at", "updated_at"),
)
_PAYMENTS = _table(
    "payments",
    *("id", "order_id", "user_id", "settlement_id", "amount", "currency", "status", "method"),
    "refunded_amount",
    times=("created_at",),
)
_RECEIPTS = _table(
    "receipts",
    *("id", "payment_id", "order_id", "user_id", "charger_id", "amount", "currency"),
    "breakdown",
    times=("issued_at",),
)


def _legacy_receipts(connection: Connection) -> None:
    """Three paid orders as revision 0011 stored them; the receipt ids are not in the order
    the rows were written."""
    connection.execute(
        _CHARGERS.insert().values(
            id="M1", registration="Accepted", online=False, location="Bay 7", created_at=AT
        )
    )
    for n, receipt_id in ((1, 12), (2, 10), (3, 11)):
        oid = f"ORDER{n}"
        connection.execute(
            _ORDERS.insert().values(
                id=oid, user_id=1, charger_id="M1", evse_id=n, status="paid",
                request_kind="amount", tariff_claim=TAR, limits_claim="[2000]", hold_amount=2000,
                currency="CNY", start_token="t", kid="k", issued_at=AT, expires_at=AT,
                created_at=AT, updated_at=AT,
            )
        )  # fmt: skip
        connection.execute(
            _RECORDS.insert().values(
                id=n, order_id=oid, charger_id="M1", session_no=1, first_source="upload",
                offline=True, charge_amount=100 * n, disagreement=False, verified_at=AT,
                updated_at=AT,
            )
        )  # fmt: skip
        connection.execute(
            _PAYMENTS.insert().values(
                id=n, order_id=oid, user_id=1, settlement_id=n, amount=100 * n, currency="CNY",
                status="captured", method="hold", refunded_amount=0, created_at=AT,
            )
        )  # fmt: skip
        connection.execute(
            _RECEIPTS.insert().values(
                id=receipt_id, payment_id=n, order_id=oid, user_id=1, charger_id="M1",
                amount=100 * n, currency="CNY", breakdown="{}", issued_at=AT,
            )
        )  # fmt: skip


def _numbered(connection: Connection) -> list[tuple[object, ...]]:
    rows = connection.execute(
        sa.text(
            "SELECT id, number, evse_id, location, tariff, operator_name, tax_rate "
            "FROM receipts ORDER BY id"
        )
    )
    return [tuple(r) for r in rows]


def _next(connection: Connection) -> int:
    return next_seq(Session(bind=connection), series="QRC-")


async def test_old_receipts_are_numbered_and_the_series_continues(db_url: str) -> None:
    db = Database.connect(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to, "0011")
            await conn.run_sync(_legacy_receipts)
        await migrate(db.engine)
        async with db.engine.begin() as conn:
            assert await conn.run_sync(_diff) == []
            assert await conn.run_sync(_numbered) == [
                (10, "QRC-000001", 2, "Bay 7", TAR, None, None),
                (11, "QRC-000002", 3, "Bay 7", TAR, None, None),
                (12, "QRC-000003", 1, "Bay 7", TAR, None, None),
            ]
            assert await conn.run_sync(_next) == 4
        async with db.engine.begin() as conn:
            await conn.run_sync(_to, "0011", down=True)
            count = (await conn.execute(sa.text("SELECT count(*) FROM receipts"))).scalar_one()
            assert count == 3
        await migrate(db.engine)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()
