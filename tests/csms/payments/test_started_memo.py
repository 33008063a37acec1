"""A started order's later starts and updates cost no unit of work; the end always bills
(:meth:`SettlementService.on_transaction_event`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from csms.payments import settlement_service

from .conftest import World


@pytest.fixture
def units(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The units of work the settlement service ran (their count)."""
    ran: list[str] = []
    real = settlement_service.in_worker

    async def counted(db: Any, unit: Callable[..., Any]) -> Any:
        ran.append("unit")
        return await real(db, unit)

    monkeypatch.setattr(settlement_service, "in_worker", counted)
    return ran


async def test_updates_after_the_start_run_no_unit_of_work(world: World, units: list[str]) -> None:
    order = await world.order(amount=5000)
    facts = await world.transaction(order, wh=5_000)
    await world.service.on_transaction_event("started", facts)
    assert (await world.reload(order)).status == "started"
    assert len(units) == 1
    for _ in range(3):
        await world.service.on_transaction_event("updated", facts)
    await world.service.on_transaction_event("started", facts)  # a repeat of the start
    assert len(units) == 1
    await world.service.on_transaction_event("ended", facts)
    assert len(units) == 2
    assert [p.amount for p in await world.payments(order)] == [615]
    # the end forgot the order: a late update asks the database again (and changes nothing)
    await world.service.on_transaction_event("updated", facts)
    assert len(units) == 3
    assert (await world.reload(order)).status == "settled"


async def test_a_failed_start_is_retried_by_the_next_update(
    world: World, units: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    order = await world.order(amount=5000)
    facts = await world.transaction(order, wh=5_000)
    real = settlement_service.mark_started

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(settlement_service, "mark_started", broken)
    with pytest.raises(RuntimeError):
        await world.service.on_transaction_event("started", facts)
    monkeypatch.setattr(settlement_service, "mark_started", real)
    assert (await world.reload(order)).status == "created"
    await world.service.on_transaction_event("updated", facts)
    assert (await world.reload(order)).status == "started"
    await world.service.on_transaction_event("updated", facts)
    assert len(units) == 2  # the failed start, the update that started it; not the last


async def test_another_chargers_transaction_is_never_remembered(
    world: World, units: list[str]
) -> None:
    order = await world.order(amount=5000)
    facts = await world.transaction(order, wh=5_000)
    foreign = replace(facts, charger_id="CP-OTHER")
    await world.service.on_transaction_event("started", foreign)
    await world.service.on_transaction_event("updated", foreign)
    assert len(units) == 2
    assert "foreign_charger" in await world.flags(order)
    assert (await world.reload(order)).status == "created"
