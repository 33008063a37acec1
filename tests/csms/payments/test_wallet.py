"""The wallet on the ledger: each operation idempotent by key, balanced, typed refusals, and
concurrent holds that never overdraw (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from csms.drivers.accounts import create_user
from csms.payments import wallet
from csms.payments.errors import (
    HoldExceeded,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidKey,
    RefundExceeded,
    UnknownWallet,
)
from csms.payments.provider import SandboxProvider
from csms.payments.top_ups import top_up
from csms.store.db import Database
from csms.store.models_money import LedgerEntry, LedgerTransfer
from csms.store.types import utcnow

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


async def test_hold_capture_release_move_exactly_the_amounts(db: Database) -> None:
    uid = await new_user(db, funds=10_000)
    async with db.session() as session:
        await wallet.place_hold(session, user_id=uid, order_id="A1", amount=4000, key="h")
        assert await wallet.available(session, uid) == 6000
        assert await wallet.held(session, uid) == 4000
        await wallet.capture(session, user_id=uid, order_id="A1", amount=1234, key="c")
        assert await wallet.hold_remaining(session, order_id="A1") == 2766
        with pytest.raises(HoldExceeded) as exceeded:
            await wallet.capture(session, user_id=uid, order_id="A1", amount=2767, key="c2")
        assert exceeded.value.remaining == 2766
        await wallet.release(session, user_id=uid, order_id="A1", key="r")  # the rest
        await session.commit()
        assert await wallet.hold_remaining(session, order_id="A1") == 0
        assert await wallet.held(session, uid) == 0
        assert await wallet.available(session, uid) == 10_000 - 1234
        await assert_ledger_consistent(session)


async def test_every_operation_repeats_without_posting(db: Database) -> None:
    uid = await new_user(db, funds=10_000)
    async with db.session() as session:
        calls: list[Callable[[], Awaitable[int]]] = [
            lambda: wallet.place_hold(session, user_id=uid, order_id="B", amount=3000, key="h"),
            lambda: wallet.capture(session, user_id=uid, order_id="B", amount=1000, key="c"),
            lambda: wallet.release(session, user_id=uid, order_id="B", amount=500, key="r"),
            lambda: wallet.refund(session, user_id=uid, order_id="B", amount=300, key="f"),
            lambda: wallet.charge_debt(session, user_id=uid, order_id="B", amount=50, key="d"),
        ]
        for call in calls:
            first = await call()
            count = len((await session.exec(select(LedgerEntry))).all())
            assert await call() == first
            assert len((await session.exec(select(LedgerEntry))).all()) == count
        await session.commit()
        assert await wallet.available(session, uid) == 10_000 - 3000 + 500 + 300 - 50
        assert await wallet.hold_remaining(session, order_id="B") == 1500


async def test_a_key_reused_for_another_operation_is_a_conflict(db: Database) -> None:
    uid = await new_user(db, funds=1000)
    async with db.session() as session:
        await wallet.place_hold(session, user_id=uid, order_id="C", amount=100, key="same")
        with pytest.raises(IdempotencyConflict):
            await wallet.capture(session, user_id=uid, order_id="C", amount=100, key="same")
        with pytest.raises(IdempotencyConflict):
            await wallet.place_hold(session, user_id=uid, order_id="C2", amount=100, key="same")
        with pytest.raises(IdempotencyConflict):
            await wallet.place_hold(session, user_id=uid, order_id="C", amount=101, key="same")


async def test_refusals(db: Database) -> None:
    uid = await new_user(db, funds=1000)
    async with db.session() as session:
        with pytest.raises(InsufficientFunds) as short:
            await wallet.place_hold(session, user_id=uid, order_id="D", amount=1001, key="h")
        assert (short.value.available, short.value.needed) == (1000, 1001)
        for bad in (-1, 1.5, "10", True):
            with pytest.raises(InvalidAmount):
                await wallet.place_hold(session, user_id=uid, order_id="D", amount=bad, key="x")  # type: ignore[arg-type]
        with pytest.raises(InvalidAmount):
            await top_up(
                db, user_id=uid, amount=0, key="zero", provider=SandboxProvider(), now=utcnow()
            )
        with pytest.raises(InvalidKey):
            await wallet.place_hold(session, user_id=uid, order_id="D", amount=1, key="")
        with pytest.raises(InvalidKey):
            await wallet.place_hold(session, user_id=uid, order_id="D", amount=1, key="k" * 201)
        with pytest.raises(UnknownWallet):
            await wallet.place_hold(session, user_id=uid + 999, order_id="D", amount=1, key="u")
        with pytest.raises(HoldExceeded):
            await wallet.release(session, user_id=uid, order_id="none", amount=1, key="r")
        with pytest.raises(RefundExceeded):
            await wallet.refund(session, user_id=uid, order_id="D", amount=1, key="f")
        await session.rollback()


async def test_refund_at_most_what_was_charged(db: Database) -> None:
    uid = await new_user(db, funds=1000)
    async with db.session() as session:
        await wallet.place_hold(session, user_id=uid, order_id="E", amount=600, key="h")
        await wallet.capture(session, user_id=uid, order_id="E", amount=400, key="c")
        await wallet.refund(session, user_id=uid, order_id="E", amount=150, key="f1")
        assert await wallet.refundable_amount(session, user_id=uid, order_id="E") == 250
        with pytest.raises(RefundExceeded):
            await wallet.refund(session, user_id=uid, order_id="E", amount=251, key="f2")
        await wallet.refund(session, user_id=uid, order_id="E", amount=250, key="f3")
        await wallet.release(session, user_id=uid, order_id="E", key="r")
        await session.commit()
        assert await wallet.available(session, uid) == 1000


async def test_debt_may_take_the_wallet_negative(db: Database) -> None:
    uid = await new_user(db, funds=100)
    async with db.session() as session:
        await wallet.charge_debt(session, user_id=uid, order_id="F", amount=350, key="late")
        await session.commit()
        assert await wallet.available(session, uid) == -250
        with pytest.raises(InsufficientFunds):
            await wallet.place_hold(session, user_id=uid, order_id="G", amount=1, key="h")
        await session.rollback()


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
    """Twenty sessions race for holds of 300 on a wallet of 2000: six win, none overdraws."""
    uid = await new_user(db, funds=2000)

    async def hold(n: int) -> bool:
        async with db.session() as session:
            try:
                await wallet.place_hold(
                    session, user_id=uid, order_id=f"R{n}", amount=300, key=f"race:{n}"
                )
            except InsufficientFunds:
                await session.rollback()
                return False
            await session.commit()
            return True

    results = await asyncio.gather(*(hold(n) for n in range(20)))
    assert sum(results) == 6
    async with db.session() as session:
        assert await wallet.available(session, uid) == 200
        assert await wallet.held(session, uid) == 1800


async def test_concurrent_repeats_of_one_key_post_once(db: Database) -> None:
    uid = await new_user(db, funds=2000)

    async def capture_twice() -> int:
        async with db.session() as session:
            transfer = await wallet.place_hold(
                session, user_id=uid, order_id="S", amount=700, key="one-hold"
            )
            await session.commit()
            return transfer

    ids = await asyncio.gather(*(capture_twice() for _ in range(10)))
    assert len(set(ids)) == 1
    async with db.session() as session:
        assert await wallet.held(session, uid) == 700
