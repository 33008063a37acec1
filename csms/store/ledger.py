"""The ledger and the wallets in the database: the wallet lock, transfers and entries, sums.

The postings run inside units of work on a synchronous :class:`~sqlmodel.Session` and use the
prebuilt statements here (built once, with bind parameters: see :mod:`csms.store.fast`); a
multi-row write is an executemany of one cached statement. The balance reads and the
operator's ledger pages are async. Nothing here commits, and nothing checks a rule: which
transfers to post, and whether a balance allows it, is decided by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Insert, bindparam, func, insert, literal, select, update
from sqlmodel import Session, col
from sqlmodel import select as orm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.store.fast import Fast, pipelined
from csms.store.models_money import LedgerEntry, LedgerTransfer, Wallet
from csms.store.writer import table_of

TRANSFERS = table_of(LedgerTransfer)
ENTRIES = table_of(LedgerEntry)
WALLETS = table_of(Wallet)

_INSERT_TRANSFERS: Insert = insert(TRANSFERS).returning(TRANSFERS.c.id, TRANSFERS.c.idempotency_key)
"""Returns each id with its key: without a promised order SQLite batches the rows in one
``INSERT .. VALUES (..), (..) RETURNING`` (with ``sort_by_parameter_order`` it does one
statement per row)."""
_INSERT_ENTRIES: Insert = insert(ENTRIES)
_TRANSFER_ROW = Fast(
    insert(TRANSFERS)
    .values({c.name: bindparam(c.name, type_=c.type) for c in TRANSFERS.columns if c.name != "id"})
    .inline()
)
"""One transfer row, every column but ``id`` bound by its name (a kept write; ``inline``: no
implicit ``RETURNING id`` that nothing would read)."""
_ENTRY_NAMES = ("account", "account_kind", "user_id", "amount")


@cache
def _entries_of_key(legs: int) -> Fast:
    """The ``legs`` entries of the transfer of key ``key`` in one statement, its id found by
    the key (unique) in the statement itself: no ``RETURNING`` to wait for. Bind ``key`` and
    ``account0``, ``account_kind0``, ``user_id0``, ``amount0``, ``account1``.. ."""
    transfer = (
        select(TRANSFERS.c.id).where(TRANSFERS.c.idempotency_key == bindparam("key"))
    ).scalar_subquery()
    rows = [
        {
            "transfer_id": transfer,
            **{name: bindparam(f"{name}{n}", type_=ENTRIES.c[name].type) for name in _ENTRY_NAMES},
        }
        for n in range(legs)
    ]
    return Fast(insert(ENTRIES).values(rows))


def _reads(keys: int, account: bool) -> list[Any]:
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


_LOCK_WALLET = Fast(
    update(WALLETS)
    .where(WALLETS.c.user_id == bindparam("wallet_user"))
    .values(version=WALLETS.c.version + 1)
    .returning(WALLETS.c.currency)
)
"""The wallet lock alone (``version + 1``), returning the currency."""


@cache
def _lock_and_read(keys: int, account: bool) -> Fast:
    """The wallet lock (``version + 1``) returning the currency and :func:`_reads` (SQLite)."""
    return Fast(
        update(WALLETS)
        .where(WALLETS.c.user_id == bindparam("wallet_user"))
        .values(version=WALLETS.c.version + 1)
        .returning(WALLETS.c.currency, *_reads(keys, account))
    )


@cache
def _read_only(keys: int, account: bool) -> Fast:
    """:func:`_reads` as a statement of its own (after the lock, on PostgreSQL)."""
    return Fast(select(*_reads(keys, account)))


# --- inside a unit of work (synchronous) -----------------------------------------------------


@cache
def _read_after_lock(keys: int, account: bool) -> Fast:
    """The wallet's currency (None: no wallet) and :func:`_reads`, sent right behind the
    wallet lock as a kept write (PostgreSQL with pipelined writes)."""
    currency = select(WALLETS.c.currency).where(WALLETS.c.user_id == bindparam("wallet_user"))
    return Fast(select(currency.scalar_subquery(), *_reads(keys, account)))


_LOCK_ONLY = Fast(
    update(WALLETS)
    .where(WALLETS.c.user_id == bindparam("wallet_user"))
    .values(version=WALLETS.c.version + 1)
)


def lock_wallet(session: Session, *, user_id: int) -> str | None:
    """Takes the driver's wallet lock for the rest of the transaction; returns its currency
    (None: the driver has no wallet).

    The lock is a write (``version + 1``): a row lock on PostgreSQL, and on SQLite the
    database write lock (the driver begins the transaction at this first write), so balance
    checks that follow see every posting committed before and none that races them.
    """
    currency = _LOCK_WALLET.scalar(session.connection(), {"wallet_user": user_id})
    return None if currency is None else str(currency)


def lock_and_read(
    session: Session, *, user_id: int, keys: Sequence[str], account: str | None
) -> tuple[str, list[int | None], int] | None:
    """Takes the wallet lock (:func:`lock_wallet`), then reads what the caller checks under
    it: the transfer id of each key (None if new) and the balance of ``account``. None when
    the driver has no wallet.

    On SQLite this is one statement, the reads riding on the lock's ``RETURNING``: the
    statement holds the database write lock before it reads, so they see every commit before
    it. On PostgreSQL it stays two: ``RETURNING`` subqueries read the snapshot taken before
    the row lock was waited for, so the reads run as the next statement (a fresh snapshot
    under READ COMMITTED). Where writes are pipelined both go in one round trip: the lock as
    a kept write, then the reads with the wallet's currency (the server runs a pipeline's
    statements one after the other, so the reads start once the lock is held).
    """
    params: dict[str, object] = {f"key{n}": key for n, key in enumerate(keys)}
    params["account"] = account
    connection = session.connection()
    if pipelined(connection):  # PostgreSQL whose writes are kept
        params["wallet_user"] = user_id
        _LOCK_ONLY.later(connection, {"wallet_user": user_id})
        row = _read_after_lock(len(keys), bool(account)).first(connection, params)
        assert row is not None  # a select of scalar subqueries: always one row
        currency, *found, amount = row
        if currency is None:
            return None
    elif connection.dialect.name != "sqlite":
        currency = lock_wallet(session, user_id=user_id)
        if currency is None:
            return None
        row = _read_only(len(keys), bool(account)).first(connection, params)
        assert row is not None  # a select of scalar subqueries: always one row
        *found, amount = row
    else:
        params["wallet_user"] = user_id
        locked = _lock_and_read(len(keys), account is not None).first(connection, params)
        if locked is None:
            return None
        currency, *found, amount = locked
    return str(currency), [None if f is None else int(f) for f in found], int(amount)


def find_transfer(session: Session, *, key: str) -> LedgerTransfer | None:
    rows = session.exec(
        orm_select(LedgerTransfer).where(col(LedgerTransfer.idempotency_key) == key)
    )
    return rows.first()


def insert_transfers(session: Session, *, transfers: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Writes transfer rows (one executemany with ``RETURNING``); their ids by key."""
    result = session.connection().execute(_INSERT_TRANSFERS, list(transfers))
    return {key: int(transfer_id) for transfer_id, key in result.all()}


def insert_entries(session: Session, *, entries: Sequence[Mapping[str, Any]]) -> None:
    """Writes entry rows (one executemany)."""
    session.connection().execute(_INSERT_ENTRIES, list(entries))


def keeps_writes(session: Session) -> bool:
    """Whether :func:`keep_transfer` sends its rows with the transaction's next round trip
    (PostgreSQL with pipelined writes) rather than at once."""
    return pipelined(session.connection())


def keep_transfer(
    session: Session, *, transfer: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]
) -> None:
    """Writes one transfer row (every column but ``id``) and its entry rows (each without
    ``transfer_id``: found by the transfer's key) as two kept writes, sent with the
    transaction's next statement or its commit where writes are pipelined (see
    :mod:`csms.store.fast`), else at once. No id comes back."""
    connection = session.connection()
    _TRANSFER_ROW.later(connection, transfer)
    params: dict[str, Any] = {"key": transfer["idempotency_key"]}
    for n, entry in enumerate(entries):
        for name in _ENTRY_NAMES:
            params[f"{name}{n}"] = entry[name]
    _entries_of_key(len(entries)).later(connection, params)


def sums_by_kind(session: Session, *, user_id: int, order_id: str) -> dict[str, int]:
    """The amounts of the order's transfers for ``user_id``, summed per transfer kind."""
    rows = session.exec(
        orm_select(col(LedgerTransfer.kind), func.sum(LedgerTransfer.amount))
        .where(col(LedgerTransfer.order_id) == order_id, col(LedgerTransfer.user_id) == user_id)
        .group_by(col(LedgerTransfer.kind))
    )
    return {kind: int(total) for kind, total in rows.all()}


# --- async: wallets, balances and the operator's pages ----------------------------------------


async def open_wallet(session: AsyncSession, *, user_id: int, currency: str) -> None:
    """Adds the (empty) wallet of a new driver. Does not commit."""
    session.add(Wallet(user_id=user_id, currency=currency))
    await session.flush()


async def wallet_currency(session: AsyncSession, *, user_id: int) -> str | None:
    """The currency of the driver's wallet (None: the driver has no wallet)."""
    rows = await session.exec(orm_select(Wallet.currency).where(col(Wallet.user_id) == user_id))
    return rows.first()


async def balance(session: AsyncSession, *, account: str) -> int:
    """The sum of every entry of ``account`` (0 for an account never used)."""
    rows = await session.exec(
        orm_select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            col(LedgerEntry.account) == account
        )
    )
    return int(rows.one())


async def balance_of_kind(session: AsyncSession, *, user_id: int, kind: str) -> int:
    """The sum of every entry of ``user_id``'s accounts of ``kind`` (e.g. all their holds)."""
    rows = await session.exec(
        orm_select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            col(LedgerEntry.user_id) == user_id, col(LedgerEntry.account_kind) == kind
        )
    )
    return int(rows.one())


async def list_transfers(
    session: AsyncSession,
    *,
    account: str | None = None,
    user_id: int | None = None,
    order_id: str | None = None,
    kind: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[LedgerTransfer]:
    """Transfers touching ``account`` (and of the user, order and kind given), newest first."""
    query = orm_select(LedgerTransfer)
    if account is not None:
        touching = orm_select(LedgerEntry.transfer_id).where(col(LedgerEntry.account) == account)
        query = query.where(col(LedgerTransfer.id).in_(touching))
    if user_id is not None:
        query = query.where(col(LedgerTransfer.user_id) == user_id)
    if order_id is not None:
        query = query.where(col(LedgerTransfer.order_id) == order_id)
    if kind is not None:
        query = query.where(col(LedgerTransfer.kind) == kind)
    rows = await session.exec(
        query.order_by(col(LedgerTransfer.id).desc()).offset(offset).limit(limit)
    )
    return list(rows.all())


async def entries_of(session: AsyncSession, *, transfer_ids: Sequence[int]) -> list[LedgerEntry]:
    """The entries of these transfers, in the order they were written."""
    found = await session.exec(
        orm_select(LedgerEntry)
        .where(col(LedgerEntry.transfer_id).in_(transfer_ids))
        .order_by(col(LedgerEntry.id))
    )
    return list(found.all())


async def open_holds(session: AsyncSession, *, user_id: int) -> list[tuple[str, int]]:
    """(account, balance) of each of the driver's hold accounts that is not zero, by name."""
    total = func.sum(LedgerEntry.amount)
    rows = await session.exec(
        orm_select(col(LedgerEntry.account), total)
        .where(col(LedgerEntry.user_id) == user_id, col(LedgerEntry.account_kind) == "hold")
        .group_by(col(LedgerEntry.account))
        .having(total != 0)
        .order_by(col(LedgerEntry.account))
    )
    return [(account, int(amount)) for account, amount in rows.all()]
