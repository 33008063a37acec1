"""A driver's wallet: top-ups, holds, captures, releases, debts and refunds on the ledger.

Every operation is ``async``, takes the caller's session first and keyword-only arguments,
posts exactly one balanced transfer, never commits (the caller owns the transaction), and is
idempotent by ``key``: a repeat with the same key returns the first transfer's id and posts
nothing; the same key for another operation raises :class:`IdempotencyConflict`. Each takes
the driver's wallet lock first (:func:`csms.payments.ledger.lock_wallet`), so concurrent
operations on one wallet are serialised and a balance check cannot race a posting.

Money flows (see :mod:`csms.payments.ledger` for the accounts)::

    top_up       psp:{provider} -> wallet:{user}
    place_hold   wallet:{user}  -> hold:{order}      InsufficientFunds if not available
    capture      hold:{order}   -> revenue           at most the remaining hold
    release      hold:{order}   -> wallet:{user}     at most the remaining hold
    charge_debt  wallet:{user}  -> revenue           may take the wallet negative (7.10)
    refund       revenue        -> wallet:{user}     at most what the order was charged
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.payments import ledger
from csms.payments.errors import (
    HoldExceeded,
    InsufficientFunds,
    PaymentDeclined,
    RefundExceeded,
    UnknownWallet,
)
from csms.payments.ledger import REVENUE, Leg, TransferKind, hold_account, wallet_account
from csms.payments.provider import PaymentProvider, SandboxProvider, record, recorded
from csms.store.models_money import LedgerTransfer, Wallet

__all__ = [
    "available",
    "capture",
    "capture_and_release",
    "charge_debt",
    "currency_of",
    "held",
    "hold_remaining",
    "open_wallet",
    "place_hold",
    "refund",
    "refundable_amount",
    "release",
    "top_up",
]


async def open_wallet(session: AsyncSession, *, user_id: int, currency: str) -> None:
    """Creates the (empty) wallet of a new driver."""
    session.add(Wallet(user_id=user_id, currency=currency))
    await session.flush()


async def currency_of(session: AsyncSession, user_id: int) -> str:
    """The wallet's currency; UnknownWallet if the user has none."""
    rows = await session.exec(select(Wallet.currency).where(col(Wallet.user_id) == user_id))
    currency = rows.first()
    if currency is None:
        raise UnknownWallet(user_id)
    return currency


async def available(session: AsyncSession, user_id: int) -> int:
    """What the driver can spend now: the sum of ``wallet:{user}``."""
    return await ledger.balance(session, wallet_account(user_id))


async def held(session: AsyncSession, user_id: int) -> int:
    """The sum of the driver's open holds."""
    return await ledger.balance_of_kind(session, user_id, "hold")


async def hold_remaining(session: AsyncSession, *, order_id: str) -> int:
    """What is still on hold for ``order_id`` (0 once captured or released)."""
    return await ledger.balance(session, hold_account(order_id))


@dataclass(frozen=True, slots=True)
class _Begun:
    currency: str
    done: int | None  # the id of an earlier identical operation: return it, post nothing
    balance: int  # of the account asked for, read under the lock


async def _begin(
    session: AsyncSession,
    *,
    key: str,
    kind: TransferKind,
    user_id: int,
    order_id: str | None,
    amount: int | None,
    balance_of: str | None = None,
) -> _Begun:
    """Locks the wallet, looks the key up and reads ``balance_of`` (one statement on SQLite)."""
    ledger.check_key(key)
    currency, (done,), balance = await ledger.lock_and_read(session, user_id, (key,), balance_of)
    if done is not None:
        found = await ledger.find_transfer(session, key)
        assert found is not None
        done = ledger.same_operation(
            found, key=key, kind=kind, user_id=user_id, order_id=order_id, amount=amount
        )
    return _Begun(currency, done, balance)


async def top_up(
    session: AsyncSession,
    *,
    user_id: int,
    amount: int,
    key: str,
    provider: PaymentProvider | None = None,
    method: str = "sandbox",
) -> int:
    """Adds ``amount`` to the wallet after the provider authorizes and captures it.

    The provider is called inside the caller's transaction under the wallet lock: right for
    the sandbox; a real PSP adapter would record a pending operation first and confirm by
    webhook. A decline is recorded in ``psp_operations`` and raised as PaymentDeclined (a
    repeat of the key is declined again without calling the provider).
    """
    ledger.check_amount(amount, positive=True)
    begun = await _begin(
        session, key=key, kind="top_up", user_id=user_id, order_id=None, amount=amount
    )
    if begun.done is not None:
        return begun.done
    psp = provider if provider is not None else SandboxProvider()
    auth_key, capture_key = f"{key}:authorize", f"{key}:capture"
    earlier = await recorded(session, auth_key)
    if earlier is not None and earlier.status != "succeeded":
        raise PaymentDeclined(f"top-up {key!r} was declined by {earlier.provider}")
    currency = begun.currency
    auth = await psp.authorize(amount=amount, currency=currency, method=method, key=auth_key)
    if earlier is None:
        await record(session, provider=psp.name, key=auth_key, result=auth, user_id=user_id)
    if auth.status != "succeeded":
        raise PaymentDeclined(f"the payment provider declined the top-up of {amount}")
    captured = await psp.capture(authorization=auth.reference, amount=amount, key=capture_key)
    op_id = await record(
        session, provider=psp.name, key=capture_key, result=captured, user_id=user_id
    )
    return await ledger.post(
        session,
        key=key,
        kind="top_up",
        legs=(
            Leg(ledger.psp_account(psp.name), "psp", -amount),
            Leg(wallet_account(user_id), "available", amount, user_id),
        ),
        currency=currency,
        user_id=user_id,
        psp_operation_id=op_id,
    )


async def place_hold(
    session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
) -> int:
    """Moves ``amount`` from available to the order's hold; InsufficientFunds if short."""
    ledger.check_amount(amount)
    begun = await _begin(
        session, key=key, kind="hold", user_id=user_id, order_id=order_id, amount=amount,
        balance_of=wallet_account(user_id),
    )  # fmt: skip
    if begun.done is not None:
        return begun.done
    if begun.balance < amount:
        raise InsufficientFunds(available=begun.balance, needed=amount)
    return await _move(
        session, key, "hold", user_id, order_id, begun.currency,
        Leg(wallet_account(user_id), "available", -amount, user_id),
        Leg(hold_account(order_id), "hold", amount, user_id),
    )  # fmt: skip


async def capture(
    session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
) -> int:
    """Moves ``amount`` of the order's hold to revenue (HoldExceeded above what is left)."""
    ledger.check_amount(amount)
    begun = await _begin(
        session, key=key, kind="capture", user_id=user_id, order_id=order_id, amount=amount,
        balance_of=hold_account(order_id),
    )  # fmt: skip
    if begun.done is not None:
        return begun.done
    _check_hold(order_id, begun.balance, amount)
    return await _move(
        session, key, "capture", user_id, order_id, begun.currency,
        Leg(hold_account(order_id), "hold", -amount, user_id),
        Leg(REVENUE, "revenue", amount),
    )  # fmt: skip


async def capture_and_release(
    session: AsyncSession,
    *,
    user_id: int,
    order_id: str,
    amount: int,
    capture_key: str,
    release_key: str,
) -> None:
    """Captures ``amount`` of the order's hold and returns the rest to available: what
    :func:`capture` then :func:`release` do, under one wallet lock, with one lookup of both
    keys and the hold, and both transfers posted together (three statements on SQLite, four
    on PostgreSQL, instead of nine).
    Each key stays idempotent on its own (a repeat posts only what is missing)."""
    ledger.check_amount(amount)
    ledger.check_key(capture_key)
    ledger.check_key(release_key)
    currency, (captured, released), remaining = await ledger.lock_and_read(
        session, user_id, (capture_key, release_key), hold_account(order_id)
    )
    if captured is not None:
        await _same_as_before(session, capture_key, "capture", user_id, order_id, amount)
    if released is not None:
        await _same_as_before(session, release_key, "release", user_id, order_id, None)
    hold, transfers = hold_account(order_id), []
    if captured is None and amount > 0:
        _check_hold(order_id, remaining, amount)
        remaining -= amount
        legs = (Leg(hold, "hold", -amount, user_id), Leg(REVENUE, "revenue", amount))
        transfers.append(ledger.Transfer(capture_key, "capture", legs, currency, user_id, order_id))
    if released is None and remaining > 0:
        legs = (
            Leg(hold, "hold", -remaining, user_id),
            Leg(wallet_account(user_id), "available", remaining, user_id),
        )
        transfers.append(ledger.Transfer(release_key, "release", legs, currency, user_id, order_id))
    await ledger.post_all(session, transfers)


async def _same_as_before(
    session: AsyncSession,
    key: str,
    kind: TransferKind,
    user_id: int,
    order_id: str,
    amount: int | None,
) -> None:
    found = await ledger.find_transfer(session, key)
    assert found is not None
    ledger.same_operation(
        found, key=key, kind=kind, user_id=user_id, order_id=order_id, amount=amount
    )


async def release(
    session: AsyncSession,
    *,
    user_id: int,
    order_id: str,
    amount: int | None = None,
    key: str,
) -> int:
    """Returns ``amount`` of the order's hold (None: all that is left) to available."""
    if amount is not None:
        ledger.check_amount(amount)
    begun = await _begin(
        session, key=key, kind="release", user_id=user_id, order_id=order_id, amount=amount,
        balance_of=hold_account(order_id),
    )  # fmt: skip
    if begun.done is not None:
        return begun.done
    if amount is None:
        amount = begun.balance
    else:
        _check_hold(order_id, begun.balance, amount)
    return await _move(
        session, key, "release", user_id, order_id, begun.currency,
        Leg(hold_account(order_id), "hold", -amount, user_id),
        Leg(wallet_account(user_id), "available", amount, user_id),
    )  # fmt: skip


async def charge_debt(
    session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
) -> int:
    """Charges ``amount`` straight from available, which may go negative: a settlement that
    arrived after its hold was released is still honoured (brief 7.10)."""
    ledger.check_amount(amount)
    begun = await _begin(
        session, key=key, kind="debt", user_id=user_id, order_id=order_id, amount=amount
    )
    if begun.done is not None:
        return begun.done
    return await _move(
        session, key, "debt", user_id, order_id, begun.currency,
        Leg(wallet_account(user_id), "available", -amount, user_id),
        Leg(REVENUE, "revenue", amount),
    )  # fmt: skip


async def refund(
    session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
) -> int:
    """Gives back ``amount`` of what the order was charged (captures and debts, less earlier
    refunds) to the driver's available balance."""
    ledger.check_amount(amount, positive=True)
    begun = await _begin(
        session, key=key, kind="refund", user_id=user_id, order_id=order_id, amount=amount
    )
    if begun.done is not None:
        return begun.done
    refundable = await refundable_amount(session, user_id=user_id, order_id=order_id)
    if amount > refundable:
        raise RefundExceeded(order_id=order_id, refundable=refundable, asked=amount)
    return await _move(
        session, key, "refund", user_id, order_id, begun.currency,
        Leg(REVENUE, "revenue", -amount),
        Leg(wallet_account(user_id), "available", amount, user_id),
    )  # fmt: skip


async def refundable_amount(session: AsyncSession, *, user_id: int, order_id: str) -> int:
    """What the order charged the driver (captures + debts) less what was refunded."""
    rows = await session.exec(
        select(col(LedgerTransfer.kind), func.sum(LedgerTransfer.amount))
        .where(col(LedgerTransfer.order_id) == order_id, col(LedgerTransfer.user_id) == user_id)
        .group_by(col(LedgerTransfer.kind))
    )
    sums = {kind: int(total) for kind, total in rows.all()}
    return sums.get("capture", 0) + sums.get("debt", 0) - sums.get("refund", 0)


def _check_hold(order_id: str, remaining: int, amount: int) -> None:
    if amount > remaining:
        raise HoldExceeded(order_id=order_id, remaining=remaining, asked=amount)


async def _move(
    session: AsyncSession,
    key: str,
    kind: TransferKind,
    user_id: int,
    order_id: str,
    currency: str,
    debit: Leg,
    credit: Leg,
) -> int:
    return await ledger.post(
        session,
        key=key,
        kind=kind,
        legs=(debit, credit),
        currency=currency,
        user_id=user_id,
        order_id=order_id,
    )
