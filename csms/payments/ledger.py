"""The double-entry ledger: balanced transfers, idempotent by key, and balances as sums.

Accounts are named strings; their kind is stored beside them so that a driver's holds can be
summed without parsing names:

===================  ==============  =====================================================
account              kind            meaning
===================  ==============  =====================================================
``wallet:{user}``    ``available``   what the driver can spend (negative only by a debt)
``hold:{order}``     ``hold``        funds reserved for one order (never negative)
``revenue``          ``revenue``     the operator's earned money
``psp:{provider}``   ``psp``         money that came in through a payment provider
===================  ==============  =====================================================

A credit to an account is a positive entry. Every transfer's entries sum to zero, so all
accounts together always sum to zero too. Nothing here commits: the caller owns the transaction.

The postings (:func:`lock_and_read`, :func:`post_all` and the rest) are synchronous functions
of a :class:`~sqlmodel.Session`: they run inside units of work
(:func:`~csms.store.units_of_work.in_worker`). The balance reads (:func:`available`,
:func:`held`, :func:`currency_of`) are async: the operator and driver pages. The statements
are :mod:`csms.store.ledger`'s; the rules (balanced legs, idempotency by key) are here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.payments.errors import IdempotencyConflict, InvalidAmount, InvalidKey, UnknownWallet
from csms.store import ledger as store_ledger
from csms.store.models_money import KEY_MAX, LedgerTransfer
from csms.store.types import utcnow

AccountKind = Literal["available", "hold", "revenue", "psp"]
TransferKind = Literal["top_up", "hold", "capture", "release", "debt", "refund"]

REVENUE = "revenue"


def wallet_account(user_id: int) -> str:
    return f"wallet:{user_id}"


def hold_account(order_id: str) -> str:
    return f"hold:{order_id}"


def psp_account(provider: str) -> str:
    return f"psp:{provider}"


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a transfer: ``amount`` is signed (a credit to ``account`` is positive)."""

    account: str
    kind: AccountKind
    amount: int
    user_id: int | None = None


def check_amount(amount: object, *, positive: bool = False) -> int:
    """``amount`` as a non-negative (or positive) int of minor units, else InvalidAmount."""
    if type(amount) is not int or amount < 0 or (positive and amount == 0):
        need = "a positive" if positive else "a non-negative"
        raise InvalidAmount(f"amount must be {need} integer in minor units, got {amount!r}")
    return amount


def check_key(key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= KEY_MAX:
        raise InvalidKey(f"an idempotency key is a string of 1..{KEY_MAX} characters")
    return key


def lock_and_read(
    session: Session, user_id: int, keys: Sequence[str], account: str | None
) -> tuple[str, list[int | None], int]:
    """Takes the wallet lock, then reads what the caller checks under it: the transfer id of
    each key (None if new) and the balance of ``account``
    (:func:`csms.store.ledger.lock_and_read`); UnknownWallet without a wallet."""
    found = store_ledger.lock_and_read(session, user_id=user_id, keys=keys, account=account)
    if found is None:
        raise UnknownWallet(user_id)
    return found


def find_transfer(session: Session, key: str) -> LedgerTransfer | None:
    return store_ledger.find_transfer(session, key=key)


def same_operation(
    found: LedgerTransfer,
    *,
    key: str,
    kind: TransferKind,
    user_id: int | None,
    order_id: str | None,
    amount: int | None,
) -> int:
    """The id of ``found`` if it records the same operation, else IdempotencyConflict.
    ``amount`` None matches any amount (an operation whose amount was computed)."""
    same = (
        found.kind == kind
        and found.user_id == user_id
        and found.order_id == order_id
        and (amount is None or found.amount == amount)
    )
    if not same:
        raise IdempotencyConflict(
            key, f"{found.kind} of {found.amount} (user {found.user_id}, order {found.order_id})"
        )
    assert found.id is not None
    return found.id


@dataclass(frozen=True, slots=True)
class Transfer:
    """One balanced transfer to post: its legs sum to zero."""

    key: str
    kind: TransferKind
    legs: tuple[Leg, ...]
    currency: str
    user_id: int | None = None
    order_id: str | None = None
    psp_operation_id: int | None = None


def post(
    session: Session,
    /,
    *,
    key: str,
    kind: TransferKind,
    legs: tuple[Leg, ...],
    currency: str,
    user_id: int | None = None,
    order_id: str | None = None,
    psp_operation_id: int | None = None,
) -> int:
    """Writes one balanced transfer and its entries; returns the transfer id.

    The caller has checked the key is new (under the wallet lock); the unique constraint on
    the key stays the last line of defence.
    """
    transfer = Transfer(key, kind, legs, currency, user_id, order_id, psp_operation_id)
    return post_all(session, (transfer,))[0]


def post_all(session: Session, transfers: Sequence[Transfer]) -> list[int]:
    """Writes balanced transfers and all their entries in two round trips (the transfers with
    ``RETURNING``, then every entry), each an executemany of one cached statement; returns the
    ids in the given order."""
    _check_balanced(transfers)
    if not transfers:
        return []
    now = utcnow()
    ids = store_ledger.insert_transfers(
        session, transfers=[_transfer_row(t, now) for t in transfers]
    )
    store_ledger.insert_entries(
        session,
        entries=[
            {"transfer_id": ids[t.key], **entry} for t in transfers for entry in _entry_rows(t)
        ],
    )
    return [ids[t.key] for t in transfers]


def write_all(session: Session, transfers: Sequence[Transfer]) -> None:
    """Writes balanced transfers and their entries when the caller needs no ids: where writes
    are pipelined (PostgreSQL) as kept writes that go with the transaction's next round trip
    or its commit (no round trip of their own, no ``RETURNING`` to wait for), else as
    :func:`post_all`."""
    if not store_ledger.keeps_writes(session):
        post_all(session, transfers)
        return
    _check_balanced(transfers)
    now = utcnow()
    for t in transfers:
        store_ledger.keep_transfer(session, transfer=_transfer_row(t, now), entries=_entry_rows(t))


def _check_balanced(transfers: Sequence[Transfer]) -> None:
    for transfer in transfers:
        legs = transfer.legs
        if sum(leg.amount for leg in legs) != 0 or len(legs) < 2:
            raise InvalidAmount("a transfer needs two or more legs that sum to zero")


def _transfer_row(t: Transfer, now: datetime) -> dict[str, object]:
    return {
        "idempotency_key": t.key,
        "kind": t.kind,
        "user_id": t.user_id,
        "order_id": t.order_id,
        "amount": sum(leg.amount for leg in t.legs if leg.amount > 0),
        "currency": t.currency,
        "psp_operation_id": t.psp_operation_id,
        "created_at": now,
    }


def _entry_rows(t: Transfer) -> list[dict[str, object]]:
    return [
        {
            "account": leg.account,
            "account_kind": leg.kind,
            "user_id": leg.user_id,
            "amount": leg.amount,
        }
        for leg in t.legs
    ]


async def balance(session: AsyncSession, account: str) -> int:
    """The sum of every entry of ``account`` (0 for an account never used)."""
    return await store_ledger.balance(session, account=account)


async def balance_of_kind(session: AsyncSession, user_id: int, kind: AccountKind) -> int:
    """The sum of every entry of ``user_id``'s accounts of ``kind`` (e.g. all their holds)."""
    return await store_ledger.balance_of_kind(session, user_id=user_id, kind=kind)


async def available(session: AsyncSession, user_id: int) -> int:
    """What the driver can spend now: the sum of ``wallet:{user}``."""
    return await balance(session, wallet_account(user_id))


async def held(session: AsyncSession, user_id: int) -> int:
    """The sum of the driver's open holds."""
    return await balance_of_kind(session, user_id, "hold")


async def currency_of(session: AsyncSession, user_id: int) -> str:
    """The wallet's currency; UnknownWallet if the user has none."""
    currency = await store_ledger.wallet_currency(session, user_id=user_id)
    if currency is None:
        raise UnknownWallet(user_id)
    return currency
