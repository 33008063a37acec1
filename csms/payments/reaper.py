"""The background task: auto-capture, hold release and offline flagging.

Each pass, for a given ``now``:

1. a payment still pending ``auto_capture_s`` after its first verified copy is captured;
2. an order never used (``created``) whose token expired (``exp + leeway < now``) is expired and
   its hold released, but only once its charger has sent a ``Synced`` after that moment: the
   charger's queue was drained, so no transaction for it is still on its way; an order the
   driver cancelled whose charger did not confirm the revocation (``cancelling``) becomes
   ``cancelled`` by the same rule;
3. such an order whose charger has stayed silent for ``offline_limit_s`` more keeps its hold
   and is flagged ``offline_limit`` for the operator;
4. a remotely started order whose OCPP meter data reached its limits is stopped remotely
   (:mod:`csms.payments.limits`);
5. a top-up left open (a lost provider answer, a crash between the provider call and its
   record) for ``psp_sweep_after_s`` is resolved by asking the provider
   (:func:`csms.payments.top_ups.sweep`).

In a cluster it runs on the elected leader only (:mod:`csms.cluster.leader` starts and stops
:meth:`Reaper.run`), yet it stays safe on several processes at once: candidates are read
without locks, then every step is a conditional update (``... WHERE status = 'created'`` /
``'pending'``) inside its own transaction, so exactly one process wins each order and the
others skip it. The wallet's
idempotency keys (``release:{order}``, ``capture:{order}``) hold even if that failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from config.settings import Settings
from csms import metrics
from csms.commands import CommandDispatcher
from csms.payments.capture import capture_unit
from csms.payments.errors import AlreadyCaptured, PaymentError
from csms.payments.lifecycle import OrderEvent, OrderState, PaymentState, next_order_state
from csms.payments.limits import enforce_limits
from csms.payments.orders import release_unused
from csms.payments.receipts import ReceiptTerms
from csms.payments.top_ups import sweep
from csms.ports import PaymentProvider
from csms.store import orders as store_orders
from csms.store import payments as store_payments
from csms.store.db import Database
from csms.store.models import ChargerSync
from csms.store.models_orders import Order
from csms.store.units_of_work import Conflict, in_worker

LOG = logging.getLogger("csms.reaper")
BATCH = 200
# the orders whose token may still be on its way to a charger, and the step that ends their hold
_UNUSED = ((OrderState.CREATED, OrderEvent.EXPIRE), (OrderState.CANCELLING, OrderEvent.CANCEL))


@dataclass
class ReapReport:
    """What one pass did (order and payment ids)."""

    captured: list[int] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)  # remote stops at an order's limit
    resolved: list[int] = field(default_factory=list)  # top-up attempts the sweeper finished


class Reaper:
    """Runs :meth:`reap_once` every ``reaper_interval_s``; the clock is injected."""

    def __init__(
        self,
        db: Database,
        *,
        settings: Settings,
        clock: Callable[[], datetime],
        dispatcher: CommandDispatcher | None = None,
        provider: PaymentProvider | None = None,
    ) -> None:
        self._db = db
        self._provider = provider  # its attempts left unresolved are swept each pass
        self._settings = settings
        self._clock = clock
        self.dispatcher = dispatcher  # set once the app's context exists (limit stops)

    async def run(self) -> None:
        """Forever; an error in one pass is logged and the next pass runs."""
        while True:
            try:
                await self.reap_once()
            except Exception:
                LOG.exception("reaper pass failed")
            await asyncio.sleep(self._settings.reaper_interval_s)

    async def reap_once(self, now: datetime | None = None) -> ReapReport:
        now = now or self._clock()
        report = ReapReport()
        await self._auto_capture(now, report)
        await self._release_unused(now, report)
        if self.dispatcher is not None:
            hits = await enforce_limits(self._db, self.dispatcher, now=now)
            report.stopped.extend(hit.order_id for hit in hits)
        provider = self._provider
        if provider is not None:
            report.resolved = await sweep(
                self._db,
                provider=provider,
                now=now,
                after_s=self._settings.psp_sweep_after_s,
                timeout_s=self._settings.psp_timeout_s,
            )
        return report

    async def _auto_capture(self, now: datetime, report: ReapReport) -> None:
        due = now - timedelta(seconds=self._settings.auto_capture_s)
        terms = ReceiptTerms.from_settings(self._settings)
        async with self._db.session() as session:
            ids = await store_payments.pending_before(
                session, status=PaymentState.PENDING, created_before=due, limit=BATCH
            )
        for payment_id in ids:

            def work(session: Session, pid: int = payment_id) -> int | None:
                # FOR UPDATE: a concurrent capture is waited for and seen here
                payment = store_payments.lock_payment(session, payment_id=pid)
                if payment is None or payment.status != PaymentState.PENDING:
                    return None  # the driver or another process captured it
                try:  # the read above may be older than another reaper's commit
                    receipt = capture_unit(
                        session, payment_id=pid, kind="auto", now=now, terms=terms, first=True
                    )
                except AlreadyCaptured:
                    return None
                return receipt.amount

            try:
                amount = await in_worker(self._db, work)
                if amount is not None:
                    report.captured.append(payment_id)
                    metrics.payment_captured("auto", amount)
            except (PaymentError, Conflict):
                LOG.exception("auto-capture of payment %s failed", payment_id)

    async def _release_unused(self, now: datetime, report: ReapReport) -> None:
        for status, event in _UNUSED:
            await self._release_unused_in(status, event, now, report)

    async def _release_unused_in(
        self, status: OrderState, event: OrderEvent, now: datetime, report: ReapReport
    ) -> None:
        leeway = timedelta(seconds=self._settings.token_leeway_s)
        after: tuple[datetime, str] | None = None
        while True:  # keyset pages: orders that stay held never hide the ones behind them
            async with self._db.session() as session:
                candidates = await store_orders.expired_unused(
                    session,
                    status=status,
                    expired_before=now - leeway,
                    after=after,
                    limit=BATCH,
                )
            await self._release_page(candidates, event, now, leeway, report)
            if len(candidates) < BATCH:
                return
            last = candidates[-1][0]
            after = (last.expires_at, last.id)

    async def _release_page(
        self,
        candidates: Sequence[tuple[Order, ChargerSync | None]],
        event: OrderEvent,
        now: datetime,
        leeway: timedelta,
        report: ReapReport,
    ) -> None:
        offline_limit = timedelta(seconds=self._settings.offline_limit_s)
        async with self._db.session() as session:
            ids = [order.id for order, _ in candidates]
            flagged = await store_orders.flagged_among(session, order_ids=ids, kind="offline_limit")
        for order, sync in candidates:
            usable_until = order.expires_at + leeway
            if sync is not None and sync.updated_at > usable_until:
                if await in_worker(self._db, self._releaser(order, event, now)):
                    report.released.append(order.id)
            elif now > usable_until + offline_limit and order.id not in flagged:
                await in_worker(self._db, self._flagger(order))
                report.flagged.append(order.id)

    @staticmethod
    def _releaser(order: Order, event: OrderEvent, now: datetime) -> Callable[[Session], bool]:
        """The end of an unused order's hold: ``created -> expired`` (``cancelling ->
        cancelled`` for one the driver cancelled) and its hold released; False when another
        process (or the charger) got there first."""
        new = next_order_state(order.status, event)
        return lambda session: (
            release_unused(session, order=order, new_status=new, now=now) is not None
        )

    @staticmethod
    def _flagger(order: Order) -> Callable[[Session], None]:
        detail = f"no Synced from {order.charger_id} since the token expired; hold kept"
        return lambda session: store_orders.add_flag(
            session, order_id=order.id, kind="offline_limit", detail=detail
        )
