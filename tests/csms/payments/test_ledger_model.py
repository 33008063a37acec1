"""The wallet against a plain Python model over random operation sequences (with repeated
keys), and the invariant checker against ledgers broken on purpose."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.payments import wallet
from csms.payments.errors import HoldExceeded, InsufficientFunds, RefundExceeded
from csms.store.db import Database

from ..conftest import SQLITE_ONLY
from ..ledger_invariants import assert_ledger_consistent
from .test_wallet import new_user


@dataclass
class Model:
    """What the wallet should say: available, each order's hold and what it charged."""

    available: int = 0
    holds: dict[str, int] = field(default_factory=dict)
    charged: dict[str, int] = field(default_factory=dict)
    done: dict[str, object] = field(default_factory=dict)  # key -> operation it recorded


async def apply(session: AsyncSession, db_user: int, model: Model, op: tuple[object, ...]) -> None:
    """Runs ``op`` on the wallet, and on the model only if the wallet accepted it."""
    kind, order, amount, key = op
    assert isinstance(order, str) and isinstance(amount, int) and isinstance(key, str)
    call = {
        "hold": wallet.place_hold,
        "capture": wallet.capture,
        "release": wallet.release,
        "debt": wallet.charge_debt,
        "refund": wallet.refund,
    }[str(kind)]
    repeat = key in model.done
    try:
        await call(session, user_id=db_user, order_id=order, amount=amount, key=key)
    except (InsufficientFunds, HoldExceeded, RefundExceeded):
        assert not repeat
        return
    if repeat:
        return  # the first result stands; nothing moved
    model.done[key] = op
    hold = model.holds.get(order, 0)
    if kind == "hold":
        model.available -= amount
        model.holds[order] = hold + amount
    elif kind == "capture":
        model.holds[order] = hold - amount
        model.charged[order] = model.charged.get(order, 0) + amount
    elif kind == "release":
        model.holds[order] = hold - amount
        model.available += amount
    elif kind == "debt":
        model.available -= amount
        model.charged[order] = model.charged.get(order, 0) + amount
    else:
        model.available += amount
        model.charged[order] = model.charged.get(order, 0) - amount


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_operations_match_the_model(db: Database, seed: int) -> None:
    rng = random.Random(seed)
    uid = await new_user(db, email=f"m{seed}@example.org", funds=5000)
    model = Model(available=5000)
    history: list[tuple[object, ...]] = []
    async with db.session() as session:
        for step in range(150):
            if history and rng.random() < 0.2:
                op = rng.choice(history)  # a retry: same key, same operation
            else:
                kind = rng.choice(["hold", "hold", "capture", "release", "debt", "refund"])
                op = (kind, f"O{rng.randrange(6)}", rng.randrange(0, 1500), f"k{step}")
                if kind in ("refund", "debt") and op[2] == 0:
                    op = (kind, op[1], 1, op[3])
            await apply(session, uid, model, op)
            history.append(op)
            if step % 25 == 0:
                await session.commit()
        await session.commit()
        assert await wallet.available(session, uid) == model.available
        assert await wallet.held(session, uid) == sum(model.holds.values())
        for order, hold in model.holds.items():
            assert await wallet.hold_remaining(session, order_id=order) == hold
        for order, charged in model.charged.items():
            assert await wallet.refundable_amount(session, user_id=uid, order_id=order) == charged
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
    async with db.session() as session:
        await wallet.place_hold(session, user_id=uid, order_id="X", amount=400, key="h")
        await session.commit()
        await assert_ledger_consistent(session)
        connection = await session.connection()
        await connection.execute(text(sql))
        with pytest.raises(AssertionError, match=complaint):
            await assert_ledger_consistent(session)
        await session.rollback()


async def test_a_negative_wallet_needs_a_debt(db: Database) -> None:
    uid = await new_user(db, funds=100)
    async with db.session() as session:
        await wallet.charge_debt(session, user_id=uid, order_id="L", amount=300, key="debt")
        await session.commit()
        await assert_ledger_consistent(session)  # negative, but by a debt
        connection = await session.connection()
        await connection.execute(text("UPDATE ledger_transfers SET kind = 'capture' "
                                      "WHERE kind = 'debt'"))  # fmt: skip
        with pytest.raises(AssertionError, match="without a debt"):
            await assert_ledger_consistent(session)
        await session.rollback()
    async with db.session() as session:
        with pytest.raises(InsufficientFunds):
            await wallet.place_hold(session, user_id=uid, order_id="M", amount=1, key="h")
        assert await wallet.available(session, uid) == -200
