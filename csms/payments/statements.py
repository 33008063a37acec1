"""Prebuilt Core statements of the payment hot path (order, settlement, capture).

Building a SQLAlchemy statement costs more CPU than SQLite takes to run it: every ``select``,
``where`` and ``values`` coerces its arguments, and the engine then derives a cache key from
the new object to find its compiled form. These statements are built once, with bind
parameters, against the tables (not the ORM classes, whose DML goes through the ORM's bulk
path); a built statement memoises its cache key, so an execution costs only the lookup of the
compiled form, the driver call and the result. Multi-row writes are executemany calls of one
cached statement (a multi-row ``VALUES`` literal is compiled anew each time).

The hot paths read plain Core rows and turn the few they return into model objects with
:func:`loaded` (what the ORM's loader does, without a session: an ORM entity select cost about
four times the Core one, and a validating ``SQLModel.__init__`` some 45 us per object). Only
immutable statement objects live here; builders that depend on a shape (how many keys, which
columns) are memoised with :func:`functools.cache`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any, TypeVar, cast

from pydantic_core import PydanticUndefined
from sqlalchemy import (
    Insert,
    Table,
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
from sqlalchemy.engine import Row
from sqlalchemy.orm import instrumentation

from csms.store.fast import Fast
from csms.store.models import Charger as ChargerModel
from csms.store.models import ChargerKey, Evse, SettlementInbox
from csms.store.models_money import LedgerEntry, LedgerTransfer, Wallet
from csms.store.models_orders import Order, OrderFlag, Payment, Receipt, SettlementRecord
from csms.store.types import UtcDateTime

M = TypeVar("M")

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
    "LOCK_WALLET",
    "ORDER_PAID",
    "RECORDS_OF_COPY",
    "VERIFY_ROWS",
    "columns",
    "loaded",
    "lock_and_read",
    "order_state_update",
    "reads",
    "split",
    "table",
    "with_defaults",
]


def table(model: type[Any]) -> Table:
    """The Core table of a SQLModel table class."""
    return cast(Table, inspect(model).local_table)


_NEW_INSTANCE: dict[type[Any], Callable[[], Any]] = {}  # the class manager's, per model


def loaded(model: type[M], values: Mapping[str, Any]) -> M:
    """A model object holding ``values`` (column name -> value, one per column), made as the
    ORM's loader makes one (the class manager's new instance, the values in its dict): no
    validation, no session. Meant for rows just read or written, handed out as results."""
    new = _NEW_INSTANCE.get(model)
    if new is None:
        new = _NEW_INSTANCE[model] = instrumentation.manager_of_class(model).new_instance
    obj: Any = new()
    obj.__dict__.update(values)
    # pydantic's own slot, set as its model_construct does (SQLModel's __setattr__ would
    # treat it as an attribute of the row)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    return cast(M, obj)


_DEFAULTS: dict[type[Any], dict[str, Any]] = {}
_COLUMN_NAMES: dict[type[Any], frozenset[str]] = {}


def _column_names(model: type[Any]) -> frozenset[str]:
    found = _COLUMN_NAMES.get(model)
    if found is None:
        found = _COLUMN_NAMES[model] = frozenset(table(model).columns.keys())
    return found


def _defaults(model: type[Any]) -> dict[str, Any]:
    found = _DEFAULTS.get(model)
    if found is None:
        found = _DEFAULTS[model] = {
            name: field.default
            for name, field in model.model_fields.items()
            if field.default_factory is None and field.default is not PydanticUndefined
        }
    return found


def with_defaults(model: type[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` completed with the model's plain defaults: a value for every column (a
    column whose default is a factory, or that has none, must be given)."""
    full = {**_defaults(model), **values}
    names = _column_names(model)
    if full.keys() != names:
        wrong = sorted(names - full.keys()) or sorted(full.keys() - names)
        raise TypeError(f"{model.__name__}: missing or unknown columns {wrong}")
    return full


def columns(*tables: Table) -> list[Any]:
    """Every column of ``tables``, in order (one select of several tables: see :func:`split`)."""
    return [column for t in tables for column in t.columns]


def split(row: Row[Any] | Sequence[Any], *tables: Table) -> list[dict[str, Any]]:
    """A row of :func:`columns` of ``tables`` as one ``{column: value}`` per table."""
    parts, start = [], 0
    for t in tables:
        names = t.columns.keys()
        parts.append(dict(zip(names, row[start : start + len(names)], strict=True)))
        start += len(names)
    return parts


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
FLAGS = table(OrderFlag)

# --- orders ---------------------------------------------------------------------------------

CHARGER_CHECK = Fast(
    select(
        CHARGERS.c.registration,
        select(EVSES.c.id)
        .where(
            EVSES.c.charger_id == bindparam("charger_id"), EVSES.c.evse_id == bindparam("evse_id")
        )
        .limit(1)
        .scalar_subquery(),
    ).where(CHARGERS.c.id == bindparam("charger_id"))
)
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


LOCK_WALLET = Fast(
    update(WALLETS)
    .where(WALLETS.c.user_id == bindparam("wallet_user"))
    .values(version=WALLETS.c.version + 1)
    .returning(WALLETS.c.currency)
)
"""The wallet lock alone (``version + 1``), returning the currency."""


@cache
def lock_and_read(keys: int, account: bool) -> Fast:
    """The wallet lock (``version + 1``) returning the currency and :func:`reads` (SQLite)."""
    return Fast(
        update(WALLETS)
        .where(WALLETS.c.user_id == bindparam("wallet_user"))
        .values(version=WALLETS.c.version + 1)
        .returning(WALLETS.c.currency, *reads(keys, account))
    )


@cache
def read_only(keys: int, account: bool) -> Fast:
    """:func:`reads` as a statement of its own (after the lock, on PostgreSQL)."""
    return Fast(select(*reads(keys, account)))


# --- settlements ----------------------------------------------------------------------------

_COPY = (RECORDS.c.order_id == bindparam("order_id")) | (
    (RECORDS.c.charger_id == bindparam("iss")) & (RECORDS.c.txn == bindparam("txn"))
)
VERIFY_ROWS = Fast(
    select(KEYS.c.jwk, *columns(ORDERS, RECORDS))
    .select_from(KEYS)
    .outerjoin(ORDERS, ORDERS.c.id == bindparam("order_id"))
    .outerjoin(RECORDS, _COPY)
    .where(KEYS.c.charger_id == bindparam("iss"), KEYS.c.kid == bindparam("kid"))
)
"""The charger's key by (iss, kid), then the columns of the order the token claims (all None
if unknown) and of one record of the copy (:data:`RECORDS_OF_COPY`, all None if there is
none): one row per record, at least one if the key exists."""

RECORDS_OF_COPY = select(RECORDS).where(
    (RECORDS.c.order_id == bindparam("order_id"))
    | ((RECORDS.c.charger_id == bindparam("charger_id")) & (RECORDS.c.txn == bindparam("txn")))
)
"""Every record of the order, and the record of this (charger, txn) whatever its order."""

RECORD_BY_ID = select(RECORDS).where(RECORDS.c.id == bindparam("record_id"))
RECORD_OF_OCPP = select(RECORDS).where(RECORDS.c.ocpp_transaction_pk == bindparam("pk"))
RECORDS_WITHOUT_OCPP = (
    select(RECORDS)
    .where(
        RECORDS.c.order_id == bindparam("order_id"),
        RECORDS.c.charger_id == bindparam("charger_id"),
        RECORDS.c.ocpp_transaction_pk.is_(None),
    )
    .order_by(RECORDS.c.session_no)
)
"""The order's records at this charger that no OCPP transaction completes yet."""
ORDER_BY_ID = select(ORDERS).where(ORDERS.c.id == bindparam("order_id"))

RECORD_CHARGE = Fast(
    update(RECORDS)
    .where(RECORDS.c.id == bindparam("record_id"))
    .values(
        charge_amount=bindparam("amount"),
        disagreement=bindparam("disagree"),
        updated_at=bindparam("now", type_=UtcDateTime),
    )
)
"""What a session record charges, and whether its two sources disagree."""

PAYMENT_OF_ORDER = Fast(select(PAYMENTS).where(PAYMENTS.c.order_id == bindparam("order_id")))

REVISE_PAYMENT = Fast(
    update(PAYMENTS)
    .where(PAYMENTS.c.id == bindparam("payment_id"), PAYMENTS.c.status == "pending")
    .values(amount=bindparam("amount"))
)
"""A pending payment follows the evidence (a captured one is never changed)."""

FLAG_OF_ORDER = select(FLAGS.c.id).where(
    FLAGS.c.order_id == bindparam("order_id"), FLAGS.c.kind == bindparam("kind")
)
INSERT_FLAG: Insert = insert(FLAGS)


@cache
def order_state_update(names: tuple[str, ...]) -> Fast:
    """A conditional step of an order: ``status`` and ``updated_at`` and the columns
    ``names`` (each bound by its own name) where the status read is still current."""
    when = {name: bindparam(name, type_=ORDERS.c[name].type) for name in names}
    return Fast(
        update(ORDERS)
        .where(ORDERS.c.id == bindparam("order_id"), ORDERS.c.status == bindparam("old_status"))
        .values(
            status=bindparam("new_status"),
            updated_at=bindparam("now", type_=UtcDateTime),
            **when,
        )
    )


_INBOX = table(SettlementInbox)
INSERT_INBOX = {
    "sqlite": sqlite_insert(_INBOX).on_conflict_do_nothing(),
    "postgresql": pg_insert(_INBOX).on_conflict_do_nothing(),
}
"""An uploaded token into the inbox, by dialect name; a token stored before inserts nothing."""

INSERT_RECORD: Insert = insert(RECORDS).returning(RECORDS.c.id)
INSERT_PAYMENT: Insert = insert(PAYMENTS).returning(PAYMENTS.c.id)

# --- capture --------------------------------------------------------------------------------

CAPTURE_ROWS = Fast(
    select(*columns(PAYMENTS, ORDERS, RECORDS))
    .select_from(PAYMENTS)
    .join(ORDERS, ORDERS.c.id == PAYMENTS.c.order_id)
    .join(RECORDS, RECORDS.c.id == PAYMENTS.c.settlement_id)
    .where(PAYMENTS.c.id == bindparam("payment_id"))
)
"""The payment, its order and its billed record: :func:`split` by (PAYMENTS, ORDERS,
RECORDS)."""

RECEIPT_OF_PAYMENT = Fast(select(RECEIPTS).where(RECEIPTS.c.payment_id == bindparam("payment_id")))

CAPTURE_PAYMENT = Fast(
    update(PAYMENTS)
    .where(PAYMENTS.c.id == bindparam("payment_id"), PAYMENTS.c.status == "pending")
    .values(
        status="captured",
        captured_at=bindparam("now", type_=UtcDateTime),
        capture_kind=bindparam("kind"),
    )
)

ORDER_PAID = Fast(
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
