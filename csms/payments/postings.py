"""The wallet's postings, synchronous: holds, captures, releases, debts and refunds.

Each function takes the unit of work's :class:`~sqlmodel.Session` first and keyword-only
arguments, posts exactly one balanced transfer (``capture_and_release`` two), never commits
(the caller owns the transaction), and is idempotent by ``key``: a repeat with the same key
returns the first transfer's id (:func:`release`: 0; :func:`place_hold` and
:func:`capture_and_release` return nothing) and posts nothing; the same key for
another operation raises :class:`IdempotencyConflict`. Each takes the driver's wallet lock first
(:func:`csms.store.ledger.lock_and_read`), so concurrent operations on one wallet are
serialised and a balance check cannot race a posting.

They are the only way money moves between a wallet, its holds and revenue: every caller,
async ones included, runs them inside a unit of work
(:func:`~csms.store.units_of_work.in_worker`: in the database thread on SQLite). Money flows
(see :mod:`csms.payments.ledger` for the accounts)::

    place_hold           wallet:{user} -> hold:{order}   InsufficientFunds if not available
    capture_and_release  hold:{order}  -> revenue        at most the remaining hold,
                         hold:{order}  -> wallet:{user}  and the rest back to available
    release              hold:{order}  -> wallet:{user}  all that is left of the hold
    charge_debt          wallet:{user} -> revenue        may take the wallet negative
    refund               revenue       -> wallet:{user}  at most what the order was charged
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from csms.payments import ledger
from csms.payments.errors import HoldExceeded, InsufficientFunds, RefundExceeded
from csms.payments.ledger import REVENUE, Leg, TransferKind, hold_account, wallet_account
from csms.store import ledger as store_ledger

__all__ = [
    "begin",
    "capture_and_release",
    "charge_debt",
    "place_hold",
    "refund",
    "refundable_amount",
    "release",
]


@dataclass(frozen=True, slots=True)
class Begun:
    currency: str
    done: int | None  # the id of an earlier identical operation: return it, post nothing
    balance: int  # of the account asked for, read under the lock


def begin(
    session: Session,
    /,
    *,
    key: str,
    kind: TransferKind,
    user_id: int,
    order_id: str | None,
    amount: int | None,
    balance_of: str | None = None,
) -> Begun:
    """Locks the wallet, looks the key up and reads ``balance_of`` (one statement on SQLite)."""
    ledger.check_key(key)
    currency, (done,), balance = ledger.lock_and_read(session, user_id, (key,), balance_of)
    if done is not None:
        found = ledger.find_transfer(session, key)
        assert found is not None
        done = ledger.same_operation(
            found, key=key, kind=kind, user_id=user_id, order_id=order_id, amount=amount
        )
    return Begun(currency, done, balance)


def place_hold(session: Session, *, user_id: int, order_id: str, amount: int, key: str) -> None:
    """Moves ``amount`` from available to the order's hold; InsufficientFunds if short. Its
    transfer is a kept write (no id comes back: the order's hot path, one round trip less)."""
    ledger.check_amount(amount)
    begun = begin(
        session, key=key, kind="hold", user_id=user_id, order_id=order_id, amount=amount,
        balance_of=wallet_account(user_id),
    )  # fmt: skip
    if begun.done is not None:
        return
    if begun.balance < amount:
        raise InsufficientFunds(available=begun.balance, needed=amount)
    legs = (
        Leg(wallet_account(user_id), "available", -amount, user_id),
        Leg(hold_account(order_id), "hold", amount, user_id),
    )
    ledger.write_all(
        session, (ledger.Transfer(key, "hold", legs, begun.currency, user_id, order_id),)
    )


def capture_and_release(
    session: Session,
    /,
    *,
    user_id: int,
    order_id: str,
    amount: int,
    capture_key: str,
    release_key: str,
) -> None:
    """Captures ``amount`` of the order's hold (HoldExceeded above what is left) and returns
    the rest to available, under one wallet lock, with one lookup of both keys and the hold,
    and both transfers posted together (three statements on SQLite; on PostgreSQL one round
    trip for the lock and the reads, the transfers kept for the next one).
    Each key stays idempotent on its own (a repeat posts only what is missing); a capture of
    0 posts only the release."""
    ledger.check_amount(amount)
    ledger.check_key(capture_key)
    ledger.check_key(release_key)
    currency, (captured, released), remaining = ledger.lock_and_read(
        session, user_id, (capture_key, release_key), hold_account(order_id)
    )
    if captured is not None:
        _same_as_before(session, capture_key, "capture", user_id, order_id, amount)
    if released is not None:
        _same_as_before(session, release_key, "release", user_id, order_id, None)
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
    ledger.write_all(session, transfers)


def _same_as_before(
    session: Session,
    key: str,
    kind: TransferKind,
    user_id: int,
    order_id: str,
    amount: int | None,
) -> None:
    found = ledger.find_transfer(session, key)
    assert found is not None
    ledger.same_operation(
        found, key=key, kind=kind, user_id=user_id, order_id=order_id, amount=amount
    )


def release(session: Session, /, *, user_id: int, order_id: str, key: str) -> int:
    """Returns what is left of the order's hold to available; the amount it moved (0, and
    nothing posted, when nothing was left or ``key`` was posted before)."""
    begun = begin(
        session, key=key, kind="release", user_id=user_id, order_id=order_id, amount=None,
        balance_of=hold_account(order_id),
    )  # fmt: skip
    if begun.done is not None or begun.balance == 0:
        return 0
    _move(
        session, key, "release", user_id, order_id, begun.currency,
        Leg(hold_account(order_id), "hold", -begun.balance, user_id),
        Leg(wallet_account(user_id), "available", begun.balance, user_id),
    )  # fmt: skip
    return begun.balance


def charge_debt(session: Session, *, user_id: int, order_id: str, amount: int, key: str) -> int:
    """Charges ``amount`` straight from available, which may go negative: a settlement that
    arrived after its hold was released is still honoured: the energy was delivered."""
    ledger.check_amount(amount)
    begun = begin(session, key=key, kind="debt", user_id=user_id, order_id=order_id, amount=amount)
    if begun.done is not None:
        return begun.done
    return _move(
        session, key, "debt", user_id, order_id, begun.currency,
        Leg(wallet_account(user_id), "available", -amount, user_id),
        Leg(REVENUE, "revenue", amount),
    )  # fmt: skip


def refund(session: Session, *, user_id: int, order_id: str, amount: int, key: str) -> int:
    """Gives back ``amount`` of what the order was charged (captures and debts, less earlier
    refunds) to the driver's available balance."""
    ledger.check_amount(amount, positive=True)
    begun = begin(
        session, key=key, kind="refund", user_id=user_id, order_id=order_id, amount=amount
    )
    if begun.done is not None:
        return begun.done
    refundable = refundable_amount(session, user_id=user_id, order_id=order_id)
    if amount > refundable:
        raise RefundExceeded(order_id=order_id, refundable=refundable, asked=amount)
    return _move(
        session, key, "refund", user_id, order_id, begun.currency,
        Leg(REVENUE, "revenue", -amount),
        Leg(wallet_account(user_id), "available", amount, user_id),
    )  # fmt: skip


def refundable_amount(session: Session, *, user_id: int, order_id: str) -> int:
    """What the order charged the driver (captures + debts) less what was refunded."""
    sums = store_ledger.sums_by_kind(session, user_id=user_id, order_id=order_id)
    return sums.get("capture", 0) + sums.get("debt", 0) - sums.get("refund", 0)


def _check_hold(order_id: str, remaining: int, amount: int) -> None:
    if amount > remaining:
        raise HoldExceeded(order_id=order_id, remaining=remaining, asked=amount)


def _move(
    session: Session,
    key: str,
    kind: TransferKind,
    user_id: int,
    order_id: str,
    currency: str,
    debit: Leg,
    credit: Leg,
) -> int:
    return ledger.post(
        session,
        key=key,
        kind=kind,
        legs=(debit, credit),
        currency=currency,
        user_id=user_id,
        order_id=order_id,
    )
