"""Receipts: what they say (seller, charger and location, tariff, cost parts, included tax)
and their numbers (unique, consecutive per series, also under concurrent confirms), on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import update
from sqlmodel import Session

from csms.payments.capture import capture_unit
from csms.payments.orders import snapshot
from csms.payments.receipts import ReceiptTerms, included_tax, rate_text
from csms.payments.schemas import receipt_public
from csms.store.models import Charger
from csms.store.models_orders import Order, Receipt, ReceiptCounter
from csms.store.units_of_work import in_worker
from qr_extension.tariff import tariff_to_claim

from ..conftest import make_settings
from .conftest import CHARGER, World

OPERATOR = {
    "operator_name": "Harbour Parking Charging Ltd.",
    "operator_address": "1 Quay Road, Shanghai 200000",
    "operator_tax_id": "91310000MA1FL0XX1X",
    "tax_rate": Decimal("0.13"),
    "receipt_prefix": "HPC-",
}


def _with_operator(world: World, **changes: object) -> None:
    world.settings = world.settings.model_copy(update={**OPERATOR, **changes})


async def _located(world: World, location: str) -> None:
    async with world.db.session() as session:
        await session.exec(update(Charger).where(Charger.id == CHARGER).values(location=location))  # type: ignore[arg-type]
        await session.commit()


async def _settled(world: World, order: Order, *, n: int, wh: int = 10_000) -> int:
    """Settles ``order`` (session ``n`` of the charger) and returns its pending payment's id."""
    outcome = await world.service.submit(
        world.settlement(order, wh=wh, txn=f"{n:06d}-r"), source="upload"
    )
    assert outcome.payment is not None and outcome.payment.id is not None
    return outcome.payment.id


def _oracle(amount: int, rate: Fraction) -> int:
    """The included tax by exact fractions, half-up: an independent reference."""
    exact = Fraction(amount) * rate / (1 + rate)
    whole, rest = divmod(exact, 1)
    return int(whole) + (1 if rest >= Fraction(1, 2) else 0)


@given(
    amount=st.integers(min_value=0, max_value=10**12),
    rate=st.decimals(min_value=0, max_value=Decimal("0.999999"), places=6),
)
def test_included_tax_is_the_exact_share_rounded_once_half_up(amount: int, rate: Decimal) -> None:
    tax = included_tax(amount, rate)
    assert tax == _oracle(amount, Fraction(rate))
    assert 0 <= tax <= amount


def test_included_tax_examples() -> None:
    assert included_tax(113, Decimal("0.13")) == 13  # 100 + 13 % of it
    assert included_tax(135, Decimal("0.13")) == 16  # 15.53...
    assert included_tax(3, Decimal("0.2")) == 1  # exactly 0.5: half-up
    assert included_tax(1, Decimal("0.2")) == 0  # 0.1666...
    assert included_tax(1215, Decimal(0)) == 0
    assert rate_text(Decimal("0.130")) == "0.13"
    assert rate_text(Decimal("0E-6")) == "0"
    with pytest.raises(TypeError):
        included_tax(1.5, Decimal("0.1"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tax rate"):
        ReceiptTerms(operator_name="x", tax_rate=Decimal(1))


def test_settings_read_the_rate_as_an_exact_decimal(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, tax_rate="0.13", receipt_prefix="A-1_")
    assert settings.tax_rate == Decimal("0.13")
    assert ReceiptTerms.from_settings(settings).number(42) == "A-1_000042"
    for bad in ({"tax_rate": "1"}, {"tax_rate": "-0.1"}, {"tax_rate": "0.1234567"}):
        with pytest.raises(ValidationError):
            make_settings(tmp_path, **bad)
    with pytest.raises(ValidationError):
        make_settings(tmp_path, receipt_prefix="no spaces")
    with pytest.raises(ValidationError):
        make_settings(tmp_path, operator_name="")


async def test_a_receipt_names_the_seller_the_place_the_tariff_and_the_tax(world: World) -> None:
    _with_operator(world)
    await _located(world, "Level -2, Harbour Car Park")
    order = await world.order(amount=2000)
    payment_id = await _settled(world, order, n=1)
    receipt = await world.confirm(payment_id)
    public = receipt_public(receipt)

    assert public.number == "HPC-000001"
    assert public.operator is not None
    assert public.operator.name == "Harbour Parking Charging Ltd."
    assert public.operator.address == "1 Quay Road, Shanghai 200000"
    assert public.operator.tax_id == "91310000MA1FL0XX1X"
    assert (public.charger_id, public.evse_id) == (CHARGER, 1)
    assert public.location == "Level -2, Harbour Car Park"
    assert public.tariff == tariff_to_claim(snapshot(order).tariff)
    # 10 kWh at 1.20 + 0.5 h at 0.30 = 12.15, tax included at 13 %: 1215 * 0.13 / 1.13
    assert public.amount == 1215
    assert public.breakdown["energy"] == 1200 and public.breakdown["time"] == 15
    assert [(t.rate, t.amount) for t in public.tax] == [("0.13", 140)]  # 139.78 -> 140
    assert public.net_amount == 1075
    assert public.net_amount + sum(t.amount for t in public.tax) == public.amount


async def test_a_receipt_keeps_what_was_true_when_it_was_issued(world: World) -> None:
    """Settings, the charger's location and billing models change later; a receipt does not."""
    _with_operator(world)
    await _located(world, "Old place")
    order = await world.order(amount=2000)
    receipt = await world.confirm(await _settled(world, order, n=1))
    _with_operator(world, operator_name="New Name Ltd.", tax_rate=Decimal("0.06"))
    await _located(world, "New place")
    again = receipt_public(await world.confirm(receipt.payment_id))  # a repeat confirm
    assert again.number == "HPC-000001"
    assert again.operator is not None and again.operator.name == OPERATOR["operator_name"]
    assert again.location == "Old place"
    assert [t.rate for t in again.tax] == ["0.13"]


async def test_no_tax_rate_prints_no_tax_line(world: World) -> None:
    _with_operator(world, tax_rate=Decimal(0), operator_address="", operator_tax_id="")
    order = await world.order(amount=2000)
    public = receipt_public(await world.confirm(await _settled(world, order, n=1)))
    assert public.tax == [] and public.net_amount == public.amount
    assert public.operator is not None
    assert (public.operator.address, public.operator.tax_id) == (None, None)
    assert public.location is None


async def test_concurrent_confirms_number_receipts_consecutively(world: World) -> None:
    """Eight confirms at once (real concurrent transactions on PostgreSQL), each repeated:
    eight receipts numbered 1..8 of the series, no gap, no duplicate, and a repeat gets the
    receipt (and the number) it got the first time."""
    _with_operator(world)
    users = [await world.new_user() for _ in range(8)]
    payments = []
    for n, user in enumerate(users, start=1):
        order = await world.order(user_id=user, amount=2000, evse_id=1 + n % 2)
        payments.append((await _settled(world, order, n=n), user))
    receipts = await asyncio.gather(
        *(world.confirm(pid, user_id=user) for pid, user in payments for _ in range(2))
    )
    by_payment: dict[int, set[str]] = {}
    for receipt in receipts:
        by_payment.setdefault(receipt.payment_id, set()).add(receipt.number)
    assert all(len(numbers) == 1 for numbers in by_payment.values())  # repeats: same number
    numbers = sorted(n for numbers in by_payment.values() for n in numbers)
    assert numbers == [f"HPC-{i:06d}" for i in range(1, 9)]
    # a later confirm counts on
    order = await world.order(amount=2000)
    receipt = await world.confirm(await _settled(world, order, n=9))
    assert receipt.number == "HPC-000009"


async def test_a_capture_rolled_back_leaves_no_gap(world: World) -> None:
    """The number is taken in the capture's transaction: when that transaction fails after
    taking it, the next receipt gets the same number."""
    _with_operator(world)
    first = await world.order(amount=2000)
    second = await world.order(amount=2000, evse_id=2)
    failing = await _settled(world, first, n=1)
    terms = ReceiptTerms.from_settings(world.settings)

    class Crash(Exception):
        pass

    def crashes(session: Session) -> Receipt:
        receipt = capture_unit(
            session, payment_id=failing, kind="driver", now=world.clock(), terms=terms
        )
        assert receipt.number == "HPC-000001"
        raise Crash

    with pytest.raises(Crash):
        await in_worker(world.db, crashes)
    other = await world.confirm(await _settled(world, second, n=2))
    assert other.number == "HPC-000001"
    late = await world.confirm(failing)
    assert late.number == "HPC-000002"


async def test_each_prefix_is_its_own_series(world: World) -> None:
    _with_operator(world)
    a = await world.confirm(await _settled(world, await world.order(amount=2000), n=1))
    _with_operator(world, receipt_prefix="B-")
    b = await world.confirm(await _settled(world, await world.order(amount=2000, evse_id=2), n=2))
    assert (a.number, b.number) == ("HPC-000001", "B-000001")


async def test_a_number_past_six_digits_keeps_all_its_digits(world: World) -> None:
    """On PostgreSQL the number is formatted in the counter's statement; it must print as
    ``{prefix}{seq:06d}`` does, so the millionth receipt is not cut to six digits."""
    _with_operator(world)
    async with world.db.session() as session:
        session.add(ReceiptCounter(series="HPC-", last_seq=999_999))
        await session.commit()
    first = await world.confirm(await _settled(world, await world.order(amount=2000), n=1))
    order = await world.order(amount=2000, evse_id=2)
    second = await world.confirm(await _settled(world, order, n=2))
    assert (first.number, second.number) == ("HPC-1000000", "HPC-1000001")
