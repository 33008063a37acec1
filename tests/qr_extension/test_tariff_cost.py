"""The cost function, the order amount and the limits, on examples worked out by hand."""

from __future__ import annotations

import calendar
from decimal import Decimal

import pytest

from qr_extension.errors import TariffError
from qr_extension.tariff import (
    Cost,
    LimitReason,
    Limits,
    Tariff,
    TouPeriod,
    UsageBucket,
    compute_cost,
    limit_reached,
    max_amount,
    split_usage,
)

# 0.50 per session, 1.20 per kWh, 0.30 per hour of charging
FLAT = Tariff("FLAT", "EUR", fixed_fee=5000, energy_price=12000, time_price=3000)
# base 3.00 per kWh; 1.00 per kWh from 22:00 to 06:00 local time, local = UTC+1
NIGHT = Tariff(
    "NIGHT", "EUR", energy_price=30000, tou=(TouPeriod(1320, 360, 10000, 0),), tz_offset_min=60
)
NEW_YEAR = calendar.timegm((2026, 1, 1, 0, 0, 0))  # a Thursday, 01:00 local in NIGHT


def at(hour: int, minute: int = 0, *, day: int = 0) -> int:
    """UTC epoch seconds of 2026-01-01 + ``day`` at hour:minute UTC."""
    return NEW_YEAR + day * 86_400 + hour * 3600 + minute * 60


def test_flat_tariff() -> None:
    # 0.50 + 10 kWh x 1.20 + 2 h x 0.30 = 13.10
    cost = compute_cost(FLAT, [UsageBucket(0, 10_000, 7200, 0)])
    assert cost == Cost(Decimal("0.5"), Decimal("12"), Decimal("0.6"), Decimal(0), 1310, False)


def test_fixed_fee_is_due_for_a_session_without_usage() -> None:
    assert compute_cost(FLAT, []).total == 50


def test_time_of_use_within_one_evening() -> None:
    # 20:30-22:30 UTC = 21:30-23:30 local: 30 min at base, 90 min at night; 4 kWh by time
    usage = split_usage(NIGHT, at(20, 30), at(22, 30), 4000, idle=False)
    assert usage == (UsageBucket(0, 1000, 1800, 0), UsageBucket(1, 3000, 5400, 0))
    # 1 kWh x 3.00 + 3 kWh x 1.00 = 6.00
    assert compute_cost(NIGHT, usage).total == 600


def test_time_of_use_across_midnight() -> None:
    # 22:00-06:00 UTC = 23:00-07:00 local: 7 h at night (23-06), 1 h at base (06-07)
    usage = split_usage(NIGHT, at(22), at(6, day=1), 8000, idle=False)
    assert usage == (UsageBucket(0, 1000, 3600, 0), UsageBucket(1, 7000, 25_200, 0))
    # 1 kWh x 3.00 + 7 kWh x 1.00 = 10.00
    assert compute_cost(NIGHT, usage).total == 1000


def test_idle_grace_is_applied_once_over_all_buckets() -> None:
    tariff = Tariff(
        "IDLE", "EUR", idle_price=60_000, idle_grace_min=15, tou=(TouPeriod(0, 60, 0, 0),)
    )
    # 20 + 25 idle minutes - 15 grace = 30 min x 6.00 per hour = 3.00
    usage = [UsageBucket(0, 0, 0, 1200), UsageBucket(1, 0, 0, 1500)]
    cost = compute_cost(tariff, usage)
    assert (cost.idle, cost.total) == (Decimal(3), 300)
    # within the grace: nothing
    assert compute_cost(tariff, [UsageBucket(1, 0, 0, 900)]).total == 0


def test_idle_time_is_free_without_an_idle_price() -> None:
    assert compute_cost(FLAT, [UsageBucket(0, 0, 0, 36_000)]).total == 50


def test_cap_and_limit_hold_the_total() -> None:
    usage = [UsageBucket(0, 10_000, 7200, 0)]  # 13.10 uncapped
    capped = Tariff("CAP", "EUR", 5000, 12000, 3000, cap=1000)
    assert compute_cost(capped, usage) == Cost(
        Decimal("0.5"), Decimal("12"), Decimal("0.6"), Decimal(0), 1000, True
    )
    assert compute_cost(capped, usage, limit_amount=900).total == 900
    assert compute_cost(capped, usage, limit_amount=2000).total == 1000
    assert compute_cost(FLAT, usage, limit_amount=1310) == compute_cost(FLAT, usage)
    assert not compute_cost(FLAT, usage, limit_amount=1310).capped
    assert compute_cost(FLAT, usage, limit_amount=1309).capped


@pytest.mark.parametrize(
    ("fixed_fee", "total"),
    [(49, 0), (50, 1), (150, 2), (250, 3), (349, 3), (350, 4)],  # 0.0050 EUR -> 1 cent ...
)
def test_half_up_rounding(fixed_fee: int, total: int) -> None:
    assert compute_cost(Tariff("R", "EUR", fixed_fee=fixed_fee), []).total == total


def test_rounded_once_not_per_part() -> None:
    # 0.004 of energy + 0.004 of time: 0 + 0 if rounded apiece, 0.008 -> 1 cent once
    tariff = Tariff("R", "EUR", energy_price=40, time_price=40)
    cost = compute_cost(tariff, [UsageBucket(0, 1000, 3600, 0)])
    assert (cost.energy, cost.time, cost.total) == (Decimal("0.004"), Decimal("0.004"), 1)


def test_a_third_of_an_hour_is_priced_exactly() -> None:
    # 1.00 per hour for 20 min = 0.3333... (not a finite decimal), plus 0.0049 fixed
    tariff = Tariff("H", "EUR", fixed_fee=49, time_price=10_000)
    cost = compute_cost(tariff, [UsageBucket(0, 0, 1200, 0)])
    assert str(cost.time).startswith("0.33333333333333333333")
    assert cost.total == 34  # 0.33823... -> 34 cents


@pytest.mark.parametrize(
    ("currency", "energy_price", "wh", "total"),
    [
        ("JPY", 300_000, 1500, 45),  # 30 JPY per kWh x 1.5 kWh
        ("JPY", 300_000, 1550, 47),  # 46.5 -> 47
        ("JPY", 300_000, 1549, 46),  # 46.47 -> 46
        ("KWD", 1234, 10_000, 1234),  # 0.1234 KWD per kWh x 10 kWh = 1.234 KWD = 1234 fils
        ("KWD", 1235, 500, 62),  # 0.06175 KWD = 61.75 fils -> 62
        ("KWD", 1, 5000, 1),  # 0.0005 KWD = 0.5 fils -> 1
    ],
)
def test_currency_exponents(currency: str, energy_price: int, wh: int, total: int) -> None:
    tariff = Tariff("X", currency, energy_price=energy_price)
    assert compute_cost(tariff, [UsageBucket(0, wh, 0, 0)]).total == total


def test_unknown_bucket_and_bad_limit_are_refused() -> None:
    with pytest.raises(TariffError, match="bucket 1 is not a bucket"):
        compute_cost(FLAT, [UsageBucket(1, 1, 1, 0)])
    with pytest.raises(TariffError, match="limit amount"):
        compute_cost(FLAT, [], limit_amount=-1)


@pytest.mark.parametrize(
    ("cap", "requested", "configured", "expected"),
    [
        (None, None, 50_000, 50_000),  # "until full": the configured maximum
        (None, 2000, 50_000, 2000),
        (1500, None, 50_000, 1500),
        (1500, 2000, 50_000, 1500),
        (1500, 2000, 1000, 1000),
        (None, -5, 50_000, 0),
        (0, None, 50_000, 0),
    ],
)
def test_max_amount(cap: int | None, requested: int | None, configured: int, expected: int) -> None:
    assert max_amount(Tariff("A", "EUR", cap=cap), requested, configured) == expected


def test_limits_are_checked_energy_then_time_then_cost() -> None:
    usage = [UsageBucket(0, 10_000, 7200, 0)]  # 13.10
    assert (
        limit_reached(FLAT, Limits(1310, 10_000, 7200), usage, elapsed_s=7200) == LimitReason.ENERGY
    )
    assert (
        limit_reached(FLAT, Limits(1310, 10_001, 7200), usage, elapsed_s=7200) == LimitReason.TIME
    )
    assert (
        limit_reached(FLAT, Limits(1310, 10_001, 7201), usage, elapsed_s=7200) == LimitReason.COST
    )
    assert limit_reached(FLAT, Limits(1311, 10_001, 7201), usage, elapsed_s=7200) is None
    assert limit_reached(FLAT, Limits(1311), usage, elapsed_s=7200.5) is None


def test_cost_limit_uses_the_capped_price() -> None:
    capped = Tariff("CAP", "EUR", 5000, 12000, 3000, cap=1000)
    usage = [UsageBucket(0, 10_000, 7200, 0)]
    assert limit_reached(capped, Limits(1000), usage, elapsed_s=0) == LimitReason.COST
    assert limit_reached(capped, Limits(1001), usage, elapsed_s=0) is None


def test_thirds_add_up_exactly_before_the_one_rounding() -> None:
    # 20 min + 40 min at 1.00 per hour = exactly 1.00; + 0.005 fixed = 1.005 -> 101 half-up
    # (decimal thirds rounded to any precision would sum to 0.99..9 and give 100)
    tariff = Tariff("H", "EUR", fixed_fee=50, time_price=10_000, tou=(TouPeriod(0, 60, 0, 10_000),))
    usage = [UsageBucket(0, 0, 1200, 0), UsageBucket(1, 0, 2400, 0)]
    assert compute_cost(tariff, usage).total == 101
