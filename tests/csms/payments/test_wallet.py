"""The wallet on the ledger: each posting idempotent by key, balanced, typed refusals, and
concurrent holds that never overdraw (SQLite and PostgreSQL). The postings run the way every
caller runs them: as synchronous units of work (``in_worker``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from csms.drivers.accounts import create_user
from csms.payments import ledger, postings
from csms.payments.errors import (
    HoldExceeded,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidKey,
    RefundExceeded,
    UnknownWallet,
)
from csms.payments.ledger import hold_account
from csms.payments.provider import SandboxProvider
from csms.payments.top_ups import top_up
from csms.store.db import Database
from csms.store.models_money import LedgerEntry, LedgerTransfer
from csms.store.types import utcnow
from csms.store.units_of_work import in_worker

from ..ledger_invariants import assert_ledger_consistent


async def new_user(db: Database, email: str = "d@example.org", funds: int = 0) -> int:
    async with db.session() as session:
        user = await create_user(session, email=email, password_hash="x", currency="CNY")
        assert user.id is not None
        await session.commit()
    if funds:
        await top_up(
            db, user_id=user.id, amount=funds, key=f"fund:{user.id}", provider=SandboxProvider(),
            now=utcnow(),
        )  # fmt: skip
    return user.id


async def balances(db: Database, uid: int, order_id: str) -> tuple[int, int, int]:
    """(available, held, left on ``order_id``'s hold)."""
    async with db.session() as session:
        return (
            await ledger.available(session, uid),
            await ledger.held(session, uid),
            await ledger.balance(session, hold_account(order_id)),
        )


async def entry_count(db: Database) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(LedgerEntry))).one()


async def test_hold_capture_release_move_exactly_the_amounts(db: Database) -> None:
    uid = await new_user(db, funds=10_000)
    await in_worker(
        db,
        lambda s: postings.place_hold(s, user_id=uid, order_id="A1", amount=4000, key="h"),
    )
    assert await balances(db, uid, "A1") == (6000, 4000, 4000)
    with pytest.raises(HoldExceeded) as exceeded:
        await in_worker(
            db,
            lambda s: postings.capture_and_release(
                s, user_id=uid, order_id="A1", amount=4001, capture_key="c", release_key="r"
            ),
        )
    assert exceeded.value.remaining == 4000
    await in_worker(
        db,
        lambda s: postings.capture_and_release(
            s, user_id=uid, order_id="A1", amount=1234, capture_key="c", release_key="r"
        ),
    )
    assert await balances(db, uid, "A1") == (10_000 - 1234, 0, 0)
    async with db.session() as session:
        await assert_ledger_consistent(session)


async def test_release_returns_what_is_left_once(db: Database) -> None:
    uid = await new_user(db, funds=1000)
    await in_worker(
        db, lambda s: postings.place_hold(s, user_id=uid, order_id="A2", amount=700, key="h")
    )

    def release(s: Session) -> int:
        return postings.release(s, user_id=uid, order_id="A2", key="r")

    assert await in_worker(db, release) == 700
    count = await entry_count(db)
    assert await in_worker(db, release) == 0  # a repeat: nothing moves
    assert (
        await in_worker(db, lambda s: postings.release(s, user_id=uid, order_id="A2", key="r2"))
        == 0
    )  # nothing left: nothing is posted
    assert await entry_count(db) == count
    assert await balances(db, uid, "A2") == (1000, 0, 0)


async def test_every_operation_repeats_without_posting(db: Database) -> None:
    uid = await new_user(db, funds=10_000)
    calls: list[Callable[[Session], object]] = [
        lambda s: postings.place_hold(s, user_id=uid, order_id="B", amount=3000, key="h"),
        lambda s: postings.capture_and_release(
            s, user_id=uid, order_id="B", amount=1000, capture_key="c", release_key="r"
        ),
        lambda s: postings.refund(s, user_id=uid, order_id="B", amount=300, key="f"),
        lambda s: postings.charge_debt(s, user_id=uid, order_id="B", amount=50, key="d"),
    ]
    for call in calls:
        first = await in_worker(db, call)
        count = await entry_count(db)
        assert await in_worker(db, call) == first
        assert await entry_count(db) == count
    assert await balances(db, uid, "B") == (10_000 - 1000 + 300 - 50, 0, 0)


async def test_a_key_reused_for_another_operation_is_a_conflict(db: Database) -> None:
    uid = await new_user(db, funds=1000)
    await in_worker(
        db, lambda s: postings.place_hold(s, user_id=uid, order_id="C", amount=100, key="same")
    )
    reuses: list[Callable[[Session], object]] = [
        lambda s: postings.capture_and_release(
            s, user_id=uid, order_id="C", amount=100, capture_key="same", release_key="r"
        ),
        lambda s: postings.place_hold(s, user_id=uid, order_id="C2", amount=100, key="same"),
        lambda s: postings.place_hold(s, user_id=uid, order_id="C", amount=101, key="same"),
    ]
    for reuse in reuses:
        with pytest.raises(IdempotencyConflict):
            await in_worker(db, reuse)


async def test_refusals(db: Database) -> None:
    uid = await new_user(db, funds=1000)

    def hold(amount: object, key: str = "h", user: int = uid) -> Callable[[Session], int]:
        return lambda s: postings.place_hold(
            s,
            user_id=user,
            order_id="D",
            amount=amount,  # type: ignore[arg-type]
            key=key,
        )

    with pytest.raises(InsufficientFunds) as short:
        await in_worker(db, hold(1001))
    assert (short.value.available, short.value.needed) == (1000, 1001)
    for bad in (-1, 1.5, "10", True):
        with pytest.raises(InvalidAmount):
            await in_worker(db, hold(bad, key="x"))
    with pytest.raises(InvalidAmount):
        await top_up(
            db, user_id=uid, amount=0, key="zero", provider=SandboxProvider(), now=utcnow()
        )
    with pytest.raises(InvalidKey):
        await in_worker(db, hold(1, key=""))
    with pytest.raises(InvalidKey):
        await in_worker(db, hold(1, key="k" * 201))
    with pytest.raises(UnknownWallet):
        await in_worker(db, hold(1, key="u", user=uid + 999))
    with pytest.raises(HoldExceeded):
        await in_worker(
            db,
            lambda s: postings.capture_and_release(
                s, user_id=uid, order_id="none", amount=1, capture_key="c", release_key="r"
            ),
        )
    with pytest.raises(RefundExceeded):
        await in_worker(
            db, lambda s: postings.refund(s, user_id=uid, order_id="D", amount=1, key="f")
        )
    assert await balances(db, uid, "D") == (1000, 0, 0)


async def test_refund_at_most_what_was_charged(db: Database) -> None:
    uid = await new_user(db, funds=1000)
    await in_worker(
        db, lambda s: postings.place_hold(s, user_id=uid, order_id="E", amount=600, key="h")
    )
    await in_worker(
        db,
        lambda s: postings.capture_and_release(
            s, user_id=uid, order_id="E", amount=400, capture_key="c", release_key="r"
        ),
    )

    def refund(amount: int, key: str) -> Callable[[Session], int]:
        return lambda s: postings.refund(s, user_id=uid, order_id="E", amount=amount, key=key)

    await in_worker(db, refund(150, "f1"))
    assert (
        await in_worker(db, lambda s: postings.refundable_amount(s, user_id=uid, order_id="E"))
        == 250
    )
    with pytest.raises(RefundExceeded):
        await in_worker(db, refund(251, "f2"))
    await in_worker(db, refund(250, "f3"))
    assert await balances(db, uid, "E") == (1000, 0, 0)


async def test_debt_may_take_the_wallet_negative(db: Database) -> None:
    uid = await new_user(db, funds=100)
    await in_worker(
        db, lambda s: postings.charge_debt(s, user_id=uid, order_id="F", amount=350, key="late")
    )
    assert (await balances(db, uid, "F"))[0] == -250
    with pytest.raises(InsufficientFunds):
        await in_worker(
            db, lambda s: postings.place_hold(s, user_id=uid, order_id="G", amount=1, key="h")
        )


async def test_idempotency_key_is_unique_in_the_database(db: Database) -> None:
    """The constraint, not only the code, refuses a second transfer with one key."""
    uid = await new_user(db, funds=100)
    async with db.session() as session:
        session.add(
            LedgerTransfer(idempotency_key=f"fund:{uid}", kind="hold", amount=0, currency="CNY")
        )
        with pytest.raises(IntegrityError):
            await session.flush()
        await session.rollback()


async def test_concurrent_holds_never_overdraw(db: Database) -> None:
    """Twenty units race for holds of 300 on a wallet of 2000: six win, none overdraws."""
    uid = await new_user(db, funds=2000)

    async def hold(n: int) -> bool:
        try:
            await in_worker(
                db,
                lambda s: postings.place_hold(
                    s, user_id=uid, order_id=f"R{n}", amount=300, key=f"race:{n}"
                ),
            )
        except InsufficientFunds:
            return False
        return True

    results = await asyncio.gather(*(hold(n) for n in range(20)))
    assert sum(results) == 6
    available, held, _ = await balances(db, uid, "R0")
    assert (available, held) == (200, 1800)


async def test_concurrent_repeats_of_one_key_post_once(db: Database) -> None:
    uid = await new_user(db, funds=2000)

    async def hold() -> None:
        return await in_worker(
            db,
            lambda s: postings.place_hold(s, user_id=uid, order_id="S", amount=700, key="one-hold"),
        )

    await asyncio.gather(*(hold() for _ in range(10)))
    async with db.session() as session:
        count = select(func.count()).where(LedgerTransfer.idempotency_key == "one-hold")
        assert (await session.exec(count)).one() == 1
    assert (await balances(db, uid, "S"))[1] == 700
