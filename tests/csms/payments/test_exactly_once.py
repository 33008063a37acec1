"""Exactly once: every ordering of {upload, DataTransfer Settlement, OCPP end}, with
duplicates, settles the order once and charges the driver once (brief 7.8, 7.9, 7.11)."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlmodel import select

from csms.payments.order_errors import SettlementRefused
from csms.ports import TransactionFacts
from csms.store.models_orders import SettlementRecord
from qr_extension.refusal import Reason

from .conftest import FUNDS, World

COPIES = ("upload", "datatransfer", "ended")


async def _deliver(world: World, kind: str, token: str, facts: TransactionFacts) -> None:
    if kind == "upload":
        await world.service.submit(token, source="upload")
    elif kind == "datatransfer":
        await world.service.on_settlement("CP1", token, "ocpp")
    else:
        await world.service.on_transaction_event("ended", facts)


# every ordering on both backends; on PostgreSQL with 1.6, where matching is the harder case
BACKEND_VERSIONS = [
    ("sqlite", "1.6"),
    ("sqlite", "2.0.1"),
    pytest.param("postgres", "1.6", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize(("db_url", "version"), BACKEND_VERSIONS, indirect=["db_url"])
@pytest.mark.parametrize("order_of_copies", list(itertools.permutations(COPIES)))
async def test_every_ordering_with_duplicates_charges_once(
    world: World, order_of_copies: tuple[str, ...], version: str
) -> None:
    order = await world.order(amount=5000)
    token = world.settlement(order, wh=10_000, txn="000007-a1b2c3")
    # 1.6: the CSMS assigned its own transaction id; 2.0.1: the charger's serial
    ocpp_id = "41" if version == "1.6" else "000007-a1b2c3"
    facts = await world.transaction(order, transaction_id=ocpp_id, version=version, wh=10_000)
    for kind in order_of_copies:
        await _deliver(world, kind, token, facts)
    for kind in reversed(order_of_copies):  # every copy again, in the other direction
        if kind != "upload":
            await _deliver(world, kind, token, facts)
    await world.service.submit(token, source="upload")  # a duplicate upload before payment

    payments = await world.payments(order)
    assert len(payments) == 1
    payment = payments[0]
    # 10 kWh at 1.20 + 0.5 h at 0.30 = 12.15
    assert (payment.amount, payment.status, payment.method) == (1215, "pending", "hold")
    async with world.db.session() as session:
        records = (await session.exec(select(SettlementRecord))).all()
    assert len(records) == 1
    assert (
        records[0].txn == "000007-a1b2c3" and records[0].ocpp_transaction_pk == facts.transaction_pk
    )
    assert not records[0].disagreement
    assert (await world.reload(order)).status == "settled"
    assert await world.flags(order) == set()

    assert payment.id is not None
    receipt = await world.confirm(payment.id, user_id=world.user_id)
    again = await world.confirm(payment.id, user_id=world.user_id)
    assert again.id == receipt.id and receipt.amount == 1215
    assert await world.available() == FUNDS - 1215
    assert (await world.reload(order)).status == "paid"

    with pytest.raises(SettlementRefused) as refused:
        await world.service.submit(token, source="upload")
    assert refused.value.refusal.reason == Reason.REPLAYED
    for kind in COPIES[1:]:  # late charger copies after payment change nothing
        await _deliver(world, kind, token, facts)
    assert await world.available() == FUNDS - 1215
    assert len(await world.payments(order)) == 1


async def test_concurrent_uploads_charge_once(world: World) -> None:
    order = await world.order(amount=5000)
    token = world.settlement(order, wh=4_000)
    results = await asyncio.gather(
        *(world.service.submit(token, source="upload") for _ in range(20)),
        return_exceptions=True,
    )
    assert all(not isinstance(r, BaseException) for r in results), results
    payments = await world.payments(order)
    assert len(payments) == 1
    ids = {r.payment.id for r in results if not isinstance(r, BaseException) and r.payment}
    assert ids == {payments[0].id}
    assert payments[0].id is not None
    receipts = await asyncio.gather(
        *(world.confirm(payments[0].id) for _ in range(10)), return_exceptions=True
    )
    assert all(not isinstance(r, BaseException) for r in receipts), receipts
    assert len({r.id for r in receipts if not isinstance(r, BaseException)}) == 1
    assert await world.available() == FUNDS - payments[0].amount


async def test_disagreement_flags_and_charges_the_lower_amount(world: World) -> None:
    order = await world.order(amount=5000)
    token = world.settlement(order, wh=10_000)
    facts = await world.transaction(order, wh=8_000)  # the OCPP meter saw less
    await world.service.submit(token, source="upload")
    await world.service.on_transaction_event("ended", facts)
    payment = (await world.payments(order))[0]
    # signed 12.15; OCPP 8 kWh * 1.20 + 0.5 h * 0.30 = 9.75
    assert payment.amount == 975
    assert "disagreement" in await world.flags(order)


async def test_ocpp_only_settles_and_auto_captures(world: World) -> None:
    order = await world.order(amount=5000)
    facts = await world.transaction(order, wh=5_000)
    await world.service.on_transaction_event("started", facts)
    assert (await world.reload(order)).status == "started"
    await world.service.on_transaction_event("ended", facts)
    payment = (await world.payments(order))[0]
    assert (payment.amount, payment.status) == (615, "pending")  # 6.00 + 0.15
    world.clock.advance(599)
    assert (await world.reaper.reap_once()).captured == []
    world.clock.advance(2)
    report = await world.reaper.reap_once()
    assert report.captured == [payment.id]
    assert (await world.reload(order)).status == "paid"
    assert await world.available() == FUNDS - 615
    # the signed copy arrives later and agrees: matched, nothing more charged
    token = world.settlement(order, wh=5_000)
    await world.service.on_settlement("CP1", token, "ocpp")
    assert await world.available() == FUNDS - 615
    assert len(await world.payments(order)) == 1


async def test_second_transaction_on_one_order_is_stored_flagged_not_charged(
    world: World,
) -> None:
    order = await world.order(amount=5000)
    await world.service.submit(world.settlement(order, txn="000001-aaaaaa"), source="upload")
    await world.service.on_settlement("CP1", world.settlement(order, txn="000002-bbbbbb"), "ocpp")
    async with world.db.session() as session:
        records = (await session.exec(select(SettlementRecord))).all()
    assert sorted(r.session_no for r in records) == [1, 2]
    assert "second_transaction" in await world.flags(order)
    assert len(await world.payments(order)) == 1


async def test_transaction_serial_reused_for_another_order_is_refused(world: World) -> None:
    first, second = await world.order(amount=3000), await world.order(amount=3000)
    await world.service.submit(world.settlement(first, txn="000005-aaaaaa"), source="upload")
    with pytest.raises(SettlementRefused) as refused:
        await world.service.submit(world.settlement(second, txn="000005-aaaaaa"), source="upload")
    assert refused.value.refusal.reason == Reason.ORDER_MISMATCH
    assert await world.payments(second) == []
    assert len(await world.payments(first)) == 1
