"""A driver's wallet: holds, captures, releases, debts and refunds on the ledger.

Every operation is ``async``, takes the caller's session first and keyword-only arguments,
posts exactly one balanced transfer, never commits (the caller owns the transaction), and is
idempotent by ``key``: a repeat with the same key returns the first transfer's id and posts
nothing; the same key for another operation raises :class:`IdempotencyConflict`. Each takes
the driver's wallet lock first (:func:`csms.payments.ledger.lock_wallet`), so concurrent
operations on one wallet are serialised and a balance check cannot race a posting.

The postings themselves are the synchronous functions of :mod:`csms.payments.postings` (the
hot paths call them inside their units of work in the database thread); the operations here
run them on the caller's async session through ``run_sync``, so both follow the same rules.

Money flows (see :mod:`csms.payments.ledger` for the accounts)::

    top_up       psp:{provider} -> wallet:{user}     csms.payments.top_ups (two-phase)
    place_hold   wallet:{user}  -> hold:{order}      InsufficientFunds if not available
    capture      hold:{order}   -> revenue           at most the remaining hold
    release      hold:{order}   -> wallet:{user}     at most the remaining hold
    charge_debt  wallet:{user}  -> revenue           may take the wallet negative (7.10)
    refund       revenue        -> wallet:{user}     at most what the order was charged
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.payments import ledger, postings
from csms.payments.errors import UnknownWallet
from csms.payments.ledger import hold_account, wallet_account
from csms.store.models_money import Wallet
from csms.store.units_of_work import run_sync

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


async def place_hold(
    session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
) -> int:
    """Moves ``amount`` from available to the order's hold; InsufficientFunds if short."""
    return await run_sync(
        session,
        lambda s: postings.place_hold(
            s, user_id=user_id, order_id=order_id, amount=amount, key=key
        ),
    )


async def capture(
    session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
) -> int:
    """Moves ``amount`` of the order's hold to revenue (HoldExceeded above what is left)."""
    return await run_sync(
        session,
        lambda s: postings.capture(s, user_id=user_id, order_id=order_id, amount=amount, key=key),
    )


async def capture_and_release(
    session: AsyncSession,
    *,
    user_id: int,
    order_id: str,
    amount: int,
    capture_key: str,
    release_key: str,
) -> None:
    """Captures ``amount`` of the order's hold and returns the rest to available (each key
    idempotent on its own): :func:`csms.payments.postings.capture_and_release`."""
    await run_sync(
        session,
        lambda s: postings.capture_and_release(
            s,
            user_id=user_id,
            order_id=order_id,
            amount=amount,
            capture_key=capture_key,
            release_key=release_key,
        ),
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
    return await run_sync(
        session,
        lambda s: postings.release(s, user_id=user_id, order_id=order_id, amount=amount, key=key),
    )


async def charge_debt(
    session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
) -> int:
    """Charges ``amount`` straight from available, which may go negative (brief 7.10)."""
    return await run_sync(
        session,
        lambda s: postings.charge_debt(
            s, user_id=user_id, order_id=order_id, amount=amount, key=key
        ),
    )


async def refund(
    session: AsyncSession, *, user_id: int, order_id: str, amount: int, key: str
) -> int:
    """Gives back ``amount`` of what the order was charged (captures and debts, less earlier
    refunds) to the driver's available balance."""
    return await run_sync(
        session,
        lambda s: postings.refund(s, user_id=user_id, order_id=order_id, amount=amount, key=key),
    )


async def refundable_amount(session: AsyncSession, *, user_id: int, order_id: str) -> int:
    """What the order charged the driver (captures + debts) less what was refunded."""
    return await run_sync(
        session, lambda s: postings.refundable_amount(s, user_id=user_id, order_id=order_id)
    )
