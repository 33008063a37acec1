"""Enforcing an order's limits from the CSMS when the charger does not.

A charger with our extension ends energy delivery at the token's limits by itself. An order the
CSMS started remotely (RemoteStartTransaction / RequestStartTransaction carrying only the order
id) runs under no token, so the CSMS watches it: from the OCPP meter readings of its open
transaction, the energy so far, the time since the start and the cost with the order's snapshot
tariff; when one reaches the order's ``lim`` the CSMS sends a remote stop once (flag
``limit_stop``, which also tells the operator). The reaper calls :func:`enforce_limits` every
pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from csms.commands import CommandDispatcher, StopCharging
from csms.errors import CommandError
from csms.payments.billing_rules import ocpp_cost
from csms.payments.lifecycle import OrderState
from csms.payments.orders import snapshot
from csms.store import orders as store_orders
from csms.store.db import Database
from csms.store.models import Transaction
from csms.store.models_orders import Order

LOG = logging.getLogger("csms.payments.limits")
BATCH = 200


@dataclass(frozen=True, slots=True)
class LimitHit:
    order_id: str
    charger_id: str
    transaction_id: str
    ocpp_version: str
    reason: str


async def _latest_register_wh(session: AsyncSession, transaction_pk: int) -> float | None:
    """The whole register's latest reading in Wh (a phase's share is not the session's)."""
    sample = await store_orders.register_reading(session, transaction_pk=transaction_pk)
    if sample is None:
        return None
    return sample.value * 1000 if (sample.unit or "Wh").lower() == "kwh" else sample.value


def _reason(order: Order, txn: Transaction, wh: int, now: datetime) -> str | None:
    limits = snapshot(order).limits
    if limits.energy_wh is not None and wh >= limits.energy_wh:
        return "EnergyLimitReached"
    started = txn.started_at
    elapsed = (now - started).total_seconds() if started is not None else 0.0
    if limits.duration_s is not None and elapsed >= limits.duration_s:
        return "TimeLimitReached"
    if ocpp_cost(order, start=txn.started_at, stop=now, wh=wh) >= limits.amount:
        return "CostLimitReached"
    return None


async def limit_hits(session: AsyncSession, *, now: datetime) -> list[LimitHit]:
    """Open transactions of remotely started orders that have reached a limit."""
    rows = await store_orders.remotely_started(
        session, status=OrderState.STARTED, without_flag="limit_stop", limit=BATCH
    )
    hits = []
    for order, txn in rows:
        assert txn.id is not None
        latest = await _latest_register_wh(session, txn.id)
        if latest is None or txn.meter_start_wh is None:
            wh = 0
        else:
            wh = max(0, int(latest) - txn.meter_start_wh)
        reason = _reason(order, txn, wh, now)
        if reason is not None:
            hits.append(
                LimitHit(order.id, txn.charger_id, txn.transaction_id, txn.ocpp_version, reason)
            )
    return hits


async def _claim(db: Database, hit: LimitHit) -> bool:
    """Records the stop once (unique flag); False when it was already sent."""
    return await store_orders.claim_flag(
        db, order_id=hit.order_id, kind="limit_stop", detail=hit.reason
    )


async def enforce_limits(
    db: Database, dispatcher: CommandDispatcher, *, now: datetime
) -> list[LimitHit]:
    """Sends a remote stop for every remotely started order over its limits (once each)."""
    async with db.session() as session:
        hits = await limit_hits(session, now=now)
    sent = []
    for hit in hits:
        if not await _claim(db, hit):
            continue
        try:
            await dispatcher.send(hit.charger_id, StopCharging(hit.transaction_id))
            sent.append(hit)
        except CommandError as exc:  # flagged anyway: the operator sees it
            LOG.warning("%s: limit stop of order %s failed: %s", hit.charger_id, hit.order_id, exc)
    return sent
