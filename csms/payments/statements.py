"""Prebuilt Core statements of the payment hot path (order, settlement, capture).

Building a SQLAlchemy statement costs more CPU than SQLite takes to run it: every ``select``,
``where`` and ``values`` coerces its arguments, and the engine then derives a cache key from
the new object to find its compiled form. These statements are built once, with bind
parameters, against the tables (not the ORM classes, whose DML goes through the ORM's bulk
path); a built statement memoises its cache key, so an execution costs only the lookup of the
compiled form, the driver call and the result. Multi-row writes are executemany calls of one
cached statement (a multi-row ``VALUES`` literal is compiled anew each time).

ORM selects (rows loaded as objects) use SQLModel's ``select``. Only immutable statement
objects live here; builders that depend on a shape (how many keys)
are memoised with :func:`functools.cache`.
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    func,
    insert,
    inspect,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col
from sqlmodel import select as orm_select

from csms.store.models import Charger as ChargerModel
from csms.store.models import ChargerKey, Evse, SettlementInbox
from csms.store.models_money import LedgerEntry, LedgerTransfer, Wallet
from csms.store.models_orders import Order, Payment, Receipt, SettlementRecord
from csms.store.types import UtcDateTime

__all__ = [
    "CAPTURE_PAYMENT",
    "CAPTURE_ROWS",
    "CHARGER_CHECK",
    "INSERT_ENTRIES",
    "INSERT_INBOX",
    "INSERT_ORDER",
    "INSERT_PAYMENT",
    "INSERT_RECEIPT",
    "INSERT_RECORD",
    "INSERT_TRANSFERS",
    "ORDER_PAID",
    "RECORDS_OF_COPY",
    "VERIFY_ROWS",
    "lock_and_read",
    "reads",
    "table",
]


def table(model: type[Any]) -> Table:
    """The Core table of a SQLModel table class."""
    return cast(Table, inspect(model).local_table)


ORDERS = table(Order)
PAYMENTS = table(Payment)
RECEIPTS = table(Receipt)
RECORDS = table(SettlementRecord)
TRANSFERS = table(LedgerTransfer)
ENTRIES = table(LedgerEntry)
WALLETS = table(Wallet)
CHARGERS = table(ChargerModel)
EVSES = table(Evse)
KEYS = table(ChargerKey)

# --- orders ---------------------------------------------------------------------------------

CHARGER_CHECK: Select[Any] = select(
    CHARGERS.c.registration,
    select(EVSES.c.id)
    .where(EVSES.c.charger_id == bindparam("charger_id"), EVSES.c.evse_id == bindparam("evse_id"))
    .limit(1)
    .scalar_subquery(),
).where(CHARGERS.c.id == bindparam("charger_id"))
"""(registration, an EVSE row id or None) of a charger; no row for an unknown charger."""

INSERT_ORDER: Insert = insert(ORDERS)

# --- ledger ---------------------------------------------------------------------------------

INSERT_TRANSFERS: Insert = insert(TRANSFERS).returning(TRANSFERS.c.id, TRANSFERS.c.idempotency_key)
"""Returns each id with its key: without a promised order SQLite batches the rows in one
``INSERT .. VALUES (..), (..) RETURNING`` (with ``sort_by_parameter_order`` it does one
statement per row)."""
INSERT_ENTRIES: Insert = insert(ENTRIES)


def reads(keys: int, account: bool) -> list[Any]:
    """Scalar subqueries: the transfer id of each key ``key0``.. (None if new), then the
    balance of ``account`` (0 without one)."""
    found: list[Any] = [
        select(TRANSFERS.c.id)
        .where(TRANSFERS.c.idempotency_key == bindparam(f"key{n}"))
        .scalar_subquery()
        for n in range(keys)
    ]
    total = (
        select(func.coalesce(func.sum(ENTRIES.c.amount), 0))
        .where(ENTRIES.c.account == bindparam("account"))
        .scalar_subquery()
        if account
        else literal(0)
    )
    return [*found, total]


@cache
def lock_and_read(keys: int, account: bool) -> Update:
    """The wallet lock (``version + 1``) returning the currency and :func:`reads` (SQLite)."""
    return (
        update(WALLETS)
        .where(WALLETS.c.user_id == bindparam("wallet_user"))
        .values(version=WALLETS.c.version + 1)
        .returning(WALLETS.c.currency, *reads(keys, account))
    )


@cache
def read_only(keys: int, account: bool) -> Select[Any]:
    """:func:`reads` as a statement of its own (after the lock, on PostgreSQL)."""
    return select(*reads(keys, account))


# --- settlements ----------------------------------------------------------------------------

VERIFY_ROWS = (
    orm_select(col(ChargerKey.jwk), Order)
    .select_from(ChargerKey)
    .outerjoin(Order, ORDERS.c.id == bindparam("order_id"))
    .where(KEYS.c.charger_id == bindparam("iss"), KEYS.c.kid == bindparam("kid"))
)
"""The charger's key by (iss, kid), with the order the token claims (None if unknown)."""

RECORDS_OF_COPY = orm_select(SettlementRecord).where(
    (RECORDS.c.order_id == bindparam("order_id"))
    | ((RECORDS.c.charger_id == bindparam("charger_id")) & (RECORDS.c.txn == bindparam("txn")))
)
"""Every record of the order, and the record of this (charger, txn) whatever its order."""

_INBOX = table(SettlementInbox)
INSERT_INBOX = {
    "sqlite": sqlite_insert(_INBOX).on_conflict_do_nothing(),
    "postgresql": pg_insert(_INBOX).on_conflict_do_nothing(),
}
"""An uploaded token into the inbox, by dialect name; a token stored before inserts nothing."""

INSERT_RECORD: Insert = insert(RECORDS).returning(RECORDS.c.id)
INSERT_PAYMENT: Insert = insert(PAYMENTS).returning(PAYMENTS.c.id)

# --- capture --------------------------------------------------------------------------------

CAPTURE_ROWS = (
    orm_select(Payment, Order, SettlementRecord)
    .join(Order, ORDERS.c.id == PAYMENTS.c.order_id)
    .join(SettlementRecord, RECORDS.c.id == PAYMENTS.c.settlement_id)
    .where(PAYMENTS.c.id == bindparam("payment_id"))
)

CAPTURE_PAYMENT: Update = (
    update(PAYMENTS)
    .where(PAYMENTS.c.id == bindparam("payment_id"), PAYMENTS.c.status == "pending")
    .values(
        status="captured",
        captured_at=bindparam("now", type_=UtcDateTime),
        capture_kind=bindparam("kind"),
    )
)

ORDER_PAID: Update = (
    update(ORDERS)
    .where(ORDERS.c.id == bindparam("order_id"), ORDERS.c.status == bindparam("old_status"))
    .values(
        status="paid",
        paid_at=bindparam("now", type_=UtcDateTime),
        updated_at=bindparam("now", type_=UtcDateTime),
        hold_released_at=func.coalesce(
            ORDERS.c.hold_released_at, bindparam("now", type_=UtcDateTime)
        ),
    )
)

INSERT_RECEIPT: Insert = insert(RECEIPTS).returning(RECEIPTS.c.id)
