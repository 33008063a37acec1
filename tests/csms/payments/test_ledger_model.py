"""The wallet against a plain Python model over random operation sequences (with repeated
keys), and the invariant checker against ledgers broken on purpose."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text
from sqlmodel import Session

from csms.payments import ledger, postings
from csms.payments.errors import HoldExceeded, InsufficientFunds, RefundExceeded
from csms.payments.ledger import hold_account
from csms.store.db import Database
from csms.store.units_of_work import in_worker, run_sync

from ..conftest import SQLITE_ONLY
from ..ledger_invariants import assert_ledger_consistent
from .test_wallet import new_user


@dataclass
class Model:
    """What the wallet should say: available, each order's hold and what it charged."""

    available: int = 0
    holds: dict[str, int] = field(default_factory=dict)
    charged: dict[str, int] = field(default_factory=dict)
    posted: set[str] = field(default_factory=set)  # the keys a transfer was posted with

    def expect(self, op: tuple[str, str, int, str]) -> bool:
        """Applies ``op`` as the ledger should; False (nothing changed) if it must refuse."""
        kind, order, amount, key = op
        hold, charged = self.holds.get(order, 0), self.charged.get(order, 0)
        if kind == "capture":  # capture_and_release: each key posts once, on its own
            release_key = f"{key}:r"
            if key not in self.posted and amount > 0:
                if amount > hold:
                    return False
                self.posted.add(key)
                hold -= amount
                self.charged[order] = charged + amount
            if release_key not in self.posted and hold > 0:
                self.posted.add(release_key)
                self.available += hold
                hold = 0
            self.holds[order] = hold
            return True
        if key in self.posted:
            return True  # a repeat: the first result stands, nothing moves
        if kind == "release":
            if hold > 0:
                self.posted.add(key)
                self.available += hold
                self.holds[order] = 0
            return True
        if (kind == "hold" and amount > self.available) or (kind == "refund" and amount > charged):
            return False
        self.posted.add(key)
        if kind == "hold":
            self.available -= amount
            self.holds[order] = hold + amount
        elif kind == "debt":
            self.available -= amount
            self.charged[order] = charged + amount
        else:
            self.available += amount
            self.charged[order] = charged - amount
        return True


def unit(uid: int, op: tuple[str, str, int, str]) -> Callable[[Session], object]:
    """The posting ``op`` stands for, as a unit of work."""
    kind, order, amount, key = op
    if kind == "capture":
        return lambda s: postings.capture_and_release(
            s, user_id=uid, order_id=order, amount=amount, capture_key=key, release_key=f"{key}:r"
        )
    if kind == "release":
        return lambda s: postings.release(s, user_id=uid, order_id=order, key=key)
    post = {"hold": postings.place_hold, "debt": postings.charge_debt, "refund": postings.refund}
    return lambda s: post[kind](s, user_id=uid, order_id=order, amount=amount, key=key)


async def apply(db: Database, uid: int, model: Model, op: tuple[str, str, int, str]) -> None:
    """Runs ``op`` on the ledger and on the model; both accept it or both refuse it."""
    accepted = model.expect(op)
    try:
        await in_worker(db, unit(uid, op))
    except (InsufficientFunds, HoldExceeded, RefundExceeded):
        assert not accepted, f"{op} refused"
        return
    assert accepted, f"{op} accepted"


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_operations_match_the_model(db: Database, seed: int) -> None:
    rng = random.Random(seed)
    uid = await new_user(db, email=f"m{seed}@example.org", funds=5000)
    model = Model(available=5000)
    history: list[tuple[str, str, int, str]] = []
    for step in range(150):
        if history and rng.random() < 0.2:
            op = rng.choice(history)  # a retry: same key, same operation
        else:
            kind = rng.choice(["hold", "hold", "capture", "release", "debt", "refund"])
            op = (kind, f"O{rng.randrange(6)}", rng.randrange(0, 1500), f"k{step}")
            if kind in ("refund", "debt") and op[2] == 0:
                op = (kind, op[1], 1, op[3])
        await apply(db, uid, model, op)
        history.append(op)
    async with db.session() as session:
        assert await ledger.available(session, uid) == model.available
        assert await ledger.held(session, uid) == sum(model.holds.values())
        for order, hold in model.holds.items():
            assert await ledger.balance(session, hold_account(order)) == hold
        for order, charged in model.charged.items():
            refundable = await run_sync(
                session, lambda s, o=order: postings.refundable_amount(s, user_id=uid, order_id=o)
            )
            assert refundable == charged
        await assert_ledger_consistent(session)


BREAKAGES = [
    ("an unbalanced entry", "INSERT INTO ledger_entries (transfer_id, account, account_kind, "
     "user_id, amount) SELECT MIN(id), 'revenue', 'revenue', NULL, 5 FROM ledger_transfers",
     "sums to"),
    ("a transfer amount that lies", "UPDATE ledger_transfers SET amount = amount + 1 "
     "WHERE kind = 'hold'", "says"),
    ("a negative hold", "UPDATE ledger_entries SET amount = -amount WHERE transfer_id IN "
     "(SELECT id FROM ledger_transfers WHERE kind = 'hold')", "is -"),
    ("a top-up without a provider capture", "UPDATE ledger_transfers SET psp_operation_id = "
     "NULL WHERE kind = 'top_up'", "not backed"),
    ("a wallet entry of another user", "UPDATE ledger_entries SET user_id = user_id + 1 "
     "WHERE account_kind = 'available'", "names user"),
    ("a failed top-up that posted", "UPDATE psp_attempts SET state = 'failed'", "posted"),
    ("a top-up posted twice over", "UPDATE psp_attempts SET amount = amount * 2", "succeeded,"),
]  # fmt: skip


@SQLITE_ONLY  # the checker is Python over plain SQL; it runs on both backends elsewhere
@pytest.mark.parametrize(("what", "sql", "complaint"), BREAKAGES, ids=[b[0] for b in BREAKAGES])
async def test_the_checker_finds_broken_ledgers(
    db: Database, what: str, sql: str, complaint: str
) -> None:
    uid = await new_user(db, funds=1000)
    await in_worker(
        db, lambda s: postings.place_hold(s, user_id=uid, order_id="X", amount=400, key="h")
    )
    async with db.session() as session:
        await assert_ledger_consistent(session)
        connection = await session.connection()
        await connection.execute(text(sql))
        with pytest.raises(AssertionError, match=complaint):
            await assert_ledger_consistent(session)
        await session.rollback()


async def test_a_negative_wallet_needs_a_debt(db: Database) -> None:
    uid = await new_user(db, funds=100)
    await in_worker(
        db, lambda s: postings.charge_debt(s, user_id=uid, order_id="L", amount=300, key="debt")
    )
    async with db.session() as session:
        await assert_ledger_consistent(session)  # negative, but by a debt
        connection = await session.connection()
        await connection.execute(text("UPDATE ledger_transfers SET kind = 'capture' "
                                      "WHERE kind = 'debt'"))  # fmt: skip
        with pytest.raises(AssertionError, match="without a debt"):
            await assert_ledger_consistent(session)
        await session.rollback()
    with pytest.raises(InsufficientFunds):
        await in_worker(
            db, lambda s: postings.place_hold(s, user_id=uid, order_id="M", amount=1, key="h")
        )
    async with db.session() as session:
        assert await ledger.available(session, uid) == -200
