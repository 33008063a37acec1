"""Ledger invariants, checked with plain SQL (independent of :mod:`csms.payments.ledger`).

Call ``await assert_ledger_consistent(session)`` after any test that moves money:

* every transfer has two or more entries that sum to zero, and its ``amount`` is what it
  moved (the sum of its positive entries);
* all entries together sum to zero;
* balances equal sums: :func:`csms.payments.ledger.available` and ``held`` give, for every
  wallet, the sums of its ``wallet:`` and ``hold:`` entries, and account names agree with
  their kinds and owners;
* no hold account is negative, and every hold belongs to one driver;
* a wallet is negative only if that driver was charged a debt (brief 7.10);
* every top-up is backed by a succeeded provider capture of the same amount;
* a top-up attempt that succeeded posted exactly its transfer (same key, same amount), and
  one that failed or is still open posted nothing.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from csms.payments import ledger

_PREFIX = {"available": "wallet:", "hold": "hold:", "revenue": "revenue", "psp": "psp:"}


async def _rows(session: AsyncSession, sql: str) -> list[tuple[Any, ...]]:
    connection = await session.connection()
    result = await connection.execute(text(sql))
    return [tuple(r) for r in result.all()]


async def assert_ledger_consistent(session: AsyncSession) -> None:
    """Raises AssertionError naming the first broken invariant."""
    entries = await _rows(
        session,
        "SELECT e.transfer_id, e.account, e.account_kind, e.user_id, e.amount, t.kind, "
        "t.amount, t.user_id FROM ledger_entries e JOIN ledger_transfers t "
        "ON t.id = e.transfer_id ORDER BY e.id",
    )
    by_transfer: dict[object, list[tuple[Any, ...]]] = defaultdict(list)
    balances: dict[str, int] = defaultdict(int)
    hold_owners: dict[str, set[object]] = defaultdict(set)
    for row in entries:
        transfer_id, account, kind, user_id, amount = row[:5]
        assert isinstance(account, str) and isinstance(amount, int) and isinstance(kind, str)
        by_transfer[transfer_id].append(row)
        balances[account] += amount
        assert account.startswith(_PREFIX[kind]), f"account {account} is not of kind {kind}"
        if kind == "available":
            assert account == f"wallet:{user_id}", f"{account} entry names user {user_id}"
        if kind == "hold":
            hold_owners[account].add(user_id)
    transfers = await _rows(session, "SELECT id, kind, amount FROM ledger_transfers")
    for transfer_id, kind, amount in transfers:
        rows = by_transfer.get(transfer_id, [])
        assert len(rows) >= 2, f"transfer {transfer_id} ({kind}) has {len(rows)} entries"
        legs: list[int] = [r[4] for r in rows]
        assert sum(legs) == 0, f"transfer {transfer_id} ({kind}) sums to {sum(legs)}"
        moved = sum(x for x in legs if x > 0)
        assert moved == amount, f"transfer {transfer_id} says {amount}, moves {moved}"
    assert sum(balances.values()) == 0, "the ledger as a whole does not sum to zero"

    for account, owners in hold_owners.items():
        assert len(owners) == 1 and None not in owners, f"{account} has owners {owners}"
        assert balances[account] >= 0, f"hold account {account} is {balances[account]}"

    debtors = {r[0] for r in await _rows(session, "SELECT user_id FROM ledger_transfers "
                                                   "WHERE kind = 'debt'")}  # fmt: skip
    for (user_id,) in await _rows(session, "SELECT user_id FROM wallets"):
        assert isinstance(user_id, int)
        own = balances.get(f"wallet:{user_id}", 0)
        assert await ledger.available(session, user_id) == own, f"wallet {user_id} balance"
        holds = sum(balances[a] for a, owners in hold_owners.items() if owners == {user_id})
        assert await ledger.held(session, user_id) == holds, f"wallet {user_id} holds"
        assert own >= 0 or user_id in debtors, f"wallet {user_id} is {own} without a debt"

    top_ups = await _rows(
        session,
        "SELECT t.id, t.amount, p.kind, p.status, p.amount FROM ledger_transfers t "
        "LEFT JOIN psp_operations p ON p.id = t.psp_operation_id WHERE t.kind = 'top_up'",
    )
    for transfer_id, amount, psp_kind, psp_status, psp_amount in top_ups:
        assert (psp_kind, psp_status, psp_amount) == ("capture", "succeeded", amount), (
            f"top-up {transfer_id} of {amount} is not backed by a provider capture"
        )

    attempts = await _rows(
        session,
        "SELECT a.id, a.state, a.amount, a.transfer_id, t.id, t.kind, t.amount "
        "FROM psp_attempts a LEFT JOIN ledger_transfers t "
        "ON t.idempotency_key = a.idempotency_key",
    )
    for attempt_id, state, amount, transfer_id, posted, kind, posted_amount in attempts:
        if state == "succeeded":
            assert (posted, kind, posted_amount) == (transfer_id, "top_up", amount), (
                f"attempt {attempt_id} succeeded, its transfer is {posted} ({kind} {posted_amount})"
            )
        else:
            assert posted is None and transfer_id is None, (
                f"attempt {attempt_id} is {state} but posted transfer {posted}"
            )
