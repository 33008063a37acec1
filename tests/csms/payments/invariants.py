"""Money invariants of the order side, checked after every test that moves money.

* every ledger transfer balances (entries sum to zero);
* an order charges exactly what its payment says: a captured payment's amount (less refunds)
  is what the ledger captured or billed as debt for the order, a pending one nothing yet;
* no hold dangles: an order that is paid, expired or cancelled has nothing left on hold; an
  order still open (created, started, settled-but-pending with its hold) holds its full amount;
* one receipt per captured payment, none for a pending one;
* receipt numbers: each series (prefix) is numbered with no gap and no repeat up to its
  counter (from 1, unless a test started the counter higher).
"""

from __future__ import annotations

import re

from sqlalchemy import func
from sqlmodel import col, select

from csms.payments import ledger, postings
from csms.payments.ledger import hold_account
from csms.store.db import Database
from csms.store.models_money import LedgerEntry
from csms.store.models_orders import Order, Payment, Receipt, ReceiptCounter
from csms.store.units_of_work import run_sync


async def assert_money_consistent(db: Database) -> None:
    async with db.session() as session:
        unbalanced = await session.exec(
            select(LedgerEntry.transfer_id)
            .group_by(col(LedgerEntry.transfer_id))
            .having(func.sum(LedgerEntry.amount) != 0)
        )
        assert unbalanced.all() == [], "a ledger transfer does not balance"
        orders = (await session.exec(select(Order))).all()
        payments = {p.order_id: p for p in (await session.exec(select(Payment))).all()}
        all_receipts = (await session.exec(select(Receipt))).all()
        receipts = {r.payment_id for r in all_receipts}
        series: dict[str, list[int]] = {}
        for receipt in all_receipts:
            match = re.fullmatch(r"(.*?)(\d{6,})", receipt.number)
            assert match is not None, receipt.number
            series.setdefault(match[1], []).append(int(match[2]))
        counters = {c.series: c.last_seq for c in (await session.exec(select(ReceiptCounter)))}
        for prefix, numbers in series.items():
            last = counters.get(prefix, 0)
            expected = list(range(last - len(numbers) + 1, last + 1))
            assert sorted(numbers) == expected, f"{prefix}: {numbers}, counter {last}"
        for order in orders:
            held = await ledger.balance(session, hold_account(order.id))
            charged = await run_sync(
                session,
                lambda s, o=order: postings.refundable_amount(s, user_id=o.user_id, order_id=o.id),
            )
            payment = payments.get(order.id)
            where = f"order {order.id} ({order.status})"
            if order.status in ("paid", "expired", "cancelled"):
                assert held == 0, f"{where}: {held} left on hold"
            elif payment is None or payment.method == "hold":
                assert held == order.hold_amount, f"{where}: hold {held} != {order.hold_amount}"
            if payment is None or payment.status == "pending":
                assert charged == 0, f"{where}: charged {charged} before capture"
                assert payment is None or payment.id not in receipts
            else:
                expected = payment.amount - payment.refunded_amount
                assert charged == expected, f"{where}: ledger {charged}, payment {expected}"
                assert payment.id in receipts, f"{where}: captured without a receipt"
                assert order.status == "paid", where
