"""Hold release (7.10), offline-limit flags, late settlements as debts, several reapers at
once, the order-id authorization policy (7.11) and order creation (7.1, 7.7)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlmodel import Session

from csms.billing.resolve import charger_scope
from csms.id_tags import LocalTagPolicy
from csms.payments import reaper as reaper_module
from csms.payments.capture import capture_unit
from csms.payments.errors import AlreadyCaptured
from csms.payments.order_policy import OrderAuthorizationPolicy
from csms.payments.orders import ORDER_ID_LENGTH, snapshot
from csms.payments.reaper import Reaper
from csms.store.models_money import BillingAssignment, BillingModel
from csms.store.models_orders import Order, Receipt
from csms.store.units_of_work import in_worker

from .conftest import CHARGER, FUNDS, World

VALIDITY, LEEWAY = 900, 300


async def test_hold_released_only_after_exp_leeway_and_a_later_synced(world: World) -> None:
    order = await world.order(amount=3000)
    world.clock.advance(VALIDITY + LEEWAY - 10)
    await world.synced()  # a Synced before exp + leeway proves nothing
    world.clock.advance(20)
    assert (await world.reaper.reap_once()).released == []
    assert await world.available() == FUNDS - 3000
    await world.synced()  # the charger drained its queue after the token became unusable
    assert (await world.reaper.reap_once()).released == [order.id]
    assert (await world.reload(order)).status == "expired"
    assert await world.available() == FUNDS
    assert (await world.reaper.reap_once()).released == []  # once


async def test_offline_charger_keeps_the_hold_then_is_flagged(world: World) -> None:
    order = await world.order(amount=3000)
    world.clock.advance(VALIDITY + LEEWAY + 3600 - 1)  # offline_limit_s = 3600 in the world
    assert (await world.reaper.reap_once()).flagged == []
    world.clock.advance(2)
    assert (await world.reaper.reap_once()).flagged == [order.id]
    assert (await world.reaper.reap_once()).flagged == []  # flagged once
    assert "offline_limit" in await world.flags(order)
    assert (await world.reload(order)).status == "created"
    assert await world.available() == FUNDS - 3000


async def test_settlement_after_release_is_a_flagged_debt(world: World) -> None:
    order = await world.order(amount=3000)
    world.clock.advance(VALIDITY + LEEWAY + 1)
    await world.synced()
    assert (await world.reaper.reap_once()).released == [order.id]
    token = world.settlement(order, wh=10_000)  # started offline in time, delivered late
    await world.service.on_settlement(CHARGER, token, "ocpp")
    payment = (await world.payments(order))[0]
    assert (payment.method, payment.amount) == ("debt", 1215)
    assert "settled_after_release" in await world.flags(order)
    assert payment.id is not None
    await world.confirm(payment.id)
    assert await world.available() == FUNDS - 1215


async def test_several_reapers_release_and_capture_once(world: World) -> None:
    orders = [await world.order(amount=1000) for _ in range(4)]
    settled = await world.order(amount=2000)
    await world.service.submit(world.settlement(settled, wh=1000), source="upload")
    world.clock.advance(VALIDITY + LEEWAY + 700)
    await world.synced()
    reapers = [
        Reaper(world.db, settings=world.settings, clock=world.clock)
        for _ in range(3)
    ]
    reports = await asyncio.gather(*(r.reap_once() for r in reapers))
    released = sorted(o for r in reports for o in r.released)
    captured = [p for r in reports for p in r.captured]
    assert released == sorted(o.id for o in orders)
    assert len(captured) == 1
    assert await world.available() == FUNDS - 135  # 1 kWh * 1.20 + 0.5 h * 0.30


async def test_order_policy(world: World) -> None:
    fallback = LocalTagPolicy(world.db, clock=world.clock)
    policy = OrderAuthorizationPolicy(
        world.db, clock=world.clock, leeway_s=LEEWAY, fallback=fallback
    )
    order = await world.order()
    live = await policy.authorize(CHARGER, order.id)
    assert live.status == "Accepted" and live.expiry == order.expires_at
    foreign = await policy.authorize("CP9", order.id)  # what any unknown tag gets
    assert (foreign.status, foreign.expiry) == ("Invalid", None)
    unknown = await policy.authorize(CHARGER, "NOSUCHORDER")
    assert unknown.status == "Invalid" and not unknown.known
    world.clock.advance(VALIDITY + LEEWAY + 1)
    assert (await policy.authorize(CHARGER, order.id)).status == "Expired"
    await world.service.on_transaction_event("started", await world.transaction(order))
    started = await policy.authorize(CHARGER, order.id)  # the offline start, reported late
    assert started.status == "Accepted" and started.expiry == order.expires_at


async def test_order_limits_snapshot_and_ids(world: World) -> None:
    async with world.db.session() as session:
        session.add(
            BillingModel(id="VIP", currency="CNY", energy_price=8000, time_price=0, cap=2500)
        )
        await session.flush()
        session.add(BillingAssignment(scope=charger_scope(CHARGER), billing_model_id="VIP",
                                      charger_id=CHARGER))  # fmt: skip
        await session.commit()
    full = await world.order(full=True)
    assert full.hold_amount == 2500  # min(no request, cap 2500, max_order_amount 50000)
    small = await world.order(amount=1000)
    assert small.hold_amount == 1000
    energy = await world.order(energy_wh=4000)
    assert (energy.hold_amount, snapshot(energy).limits.energy_wh) == (2500, 4000)
    assert json.loads(full.tariff_claim)[:5] == ["VIP", "CNY", 0, 8000, 0]
    assert len(full.id) == ORDER_ID_LENGTH <= 15 and full.id.isalnum() and full.id.isupper()
    assert len({full.id, small.id, energy.id}) == 3
    # the operator edits the model: the order keeps what it signed (7.7)
    async with world.db.session() as session:
        model = await session.get(BillingModel, "VIP")
        assert model is not None
        model.energy_price = 99_000
        session.add(model)
        await session.commit()
    world.clock.advance(60)
    await world.service.submit(world.settlement(small, wh=1000, minutes=10), source="upload")
    assert (await world.payments(small))[0].amount == 80  # 1 kWh at 0.80
    assert world.clock.now - small.issued_at >= timedelta(seconds=60)


async def test_release_pages_past_orders_that_stay_held(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reaper_module, "BATCH", 2)  # small pages: held orders come first
    held = [await world.order(amount=100) for _ in range(3)]
    async with world.db.session() as session:  # their charger never syncs
        for order in held:
            row = await session.get(Order, order.id)
            assert row is not None
            row.charger_id = "CP-SILENT"
            session.add(row)
        await session.commit()
    world.clock.advance(60)
    late = [await world.order(amount=100) for _ in range(3)]
    world.clock.advance(VALIDITY + LEEWAY + 1)
    await world.synced()
    report = await world.reaper.reap_once()
    assert sorted(report.released) == sorted(o.id for o in late)


async def test_a_reaper_that_read_before_another_captured_does_not_report_it(
    world: World,
) -> None:
    """Two reapers on PostgreSQL (read committed) can both read a payment as pending; the
    second's capture then finds it captured. It must say it captured nothing: reporting (and
    counting in the metrics) a capture twice is how a double charge would look to an operator.
    The same holds for a driver's confirm that comes after the reaper's capture."""
    order = await world.order(amount=2000)
    outcome = await world.service.submit(world.settlement(order, wh=1000), source="upload")
    assert outcome.payment is not None and outcome.payment.id is not None
    payment_id = outcome.payment.id
    captured_before = _captured_count()
    await world.confirm(payment_id)  # the driver was first

    def late_capture(session: Session) -> Receipt:
        return capture_unit(
            session, payment_id=payment_id, kind="auto", now=world.clock(), first=True
        )

    with pytest.raises(AlreadyCaptured):
        await in_worker(world.db, late_capture)
    again = await world.confirm(payment_id)  # a repeat confirm: the same receipt, not counted
    assert again.payment_id == payment_id
    assert _captured_count() - captured_before == 1
    assert await world.available() == FUNDS - 135


def _captured_count() -> float:
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "qrcharge_payments_captured"
        for sample in family.samples
        if sample.name == "qrcharge_payments_captured_total"
    )
