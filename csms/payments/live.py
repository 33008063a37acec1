"""The running session of a started order as its driver sees it: the energy so far, from the
latest reading of the charger's energy register in the order's open OCPP transaction, and the
cost so far, priced with the order's snapshot tariff like an OCPP-only settlement (held to the
order's ``lim.amt``), with the instant of that reading. The charger's own signed settlement
remains what is billed; these figures only follow the session while it runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from csms.payments.billing_rules import ocpp_cost
from csms.payments.lifecycle import OrderState
from csms.store import orders as store_orders
from csms.store.models import MeterValue
from csms.store.models_orders import Order


@dataclass(frozen=True, slots=True)
class LiveSession:
    energy_wh: int
    amount: int
    read_at: datetime


def _wh(sample: MeterValue) -> float:
    return sample.value * 1000 if (sample.unit or "Wh").lower() == "kwh" else sample.value


async def live_session(session: AsyncSession, order: Order) -> LiveSession | None:
    """The figures of a started order's running transaction; None when the order is not
    running or the charger has reported no energy reading for it yet."""
    if order.status != OrderState.STARTED:
        return None
    txn = await store_orders.open_transaction_of(
        session, order_id=order.id, charger_id=order.charger_id
    )
    if txn is None or txn.id is None:
        return None
    latest = await store_orders.register_reading(session, transaction_pk=txn.id)
    start_wh: float | None = txn.meter_start_wh
    if start_wh is None and latest is not None:
        first = await store_orders.register_reading(session, transaction_pk=txn.id, last=False)
        start_wh = _wh(first) if first is not None else None
    if start_wh is None:
        return None
    if latest is None:  # started, nothing metered yet
        at = txn.started_at or txn.created_at
        return LiveSession(0, ocpp_cost(order, start=txn.started_at, stop=at, wh=0), at)
    wh = max(0, round(_wh(latest) - start_wh))
    at = latest.timestamp
    if txn.started_at is not None:
        at = max(at, txn.started_at)
    return LiveSession(wh, ocpp_cost(order, start=txn.started_at, stop=at, wh=wh), at)
