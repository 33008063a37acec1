"""Splitting metering intervals into price buckets, and merging usage."""

from __future__ import annotations

import calendar
import math

import pytest

from qr_extension.errors import TariffError
from qr_extension.tariff import (
    Tariff,
    TouPeriod,
    UsageBucket,
    bucket_index_at,
    merge_usage,
    split_usage,
)

DAY = 86_400
MONDAY = calendar.timegm((2026, 1, 5, 0, 0, 0))
FLAT = Tariff("FLAT", "EUR", energy_price=12000)
# local = UTC-5; bucket 1: 22:00-06:00 (crosses midnight), bucket 2: 10:00-14:00, else 0
TOU = Tariff(
    "TOU",
    "USD",
    energy_price=30_000,
    tou=(TouPeriod(1320, 360, 10_000, 0), TouPeriod(600, 840, 40_000, 0)),
    tz_offset_min=-300,
)


def utc(local_hour: float, *, day: int = 0) -> int:
    """UTC epoch of a local time of TOU (UTC-5) on Monday + ``day``."""
    return MONDAY + day * DAY + round(local_hour * 3600) + 5 * 3600


@pytest.mark.parametrize(
    ("local_hour", "index"),
    [(0, 1), (5.99, 1), (6, 0), (9.99, 0), (10, 2), (13.99, 2), (14, 0), (21.99, 0), (22, 1)],
)
def test_bucket_index_at_local_time(local_hour: float, index: int) -> None:
    assert bucket_index_at(TOU, utc(local_hour)) == index
    assert bucket_index_at(TOU, utc(local_hour, day=400)) == index


def test_whole_day_period_and_flat_tariff() -> None:
    whole = Tariff("W", "EUR", tou=(TouPeriod(300, 300, 1, 1),))
    assert {bucket_index_at(whole, MONDAY + s) for s in range(0, DAY, 600)} == {1}
    assert bucket_index_at(FLAT, MONDAY + 12_345) == 0


def test_flat_tariff_gives_one_bucket() -> None:
    usage = split_usage(FLAT, MONDAY + 0.4, MONDAY + 3600.4, 7000, idle=False)
    assert usage == (UsageBucket(0, 7000, 3600, 0),)


def test_split_over_several_days() -> None:
    # Monday 08:00 to Wednesday 08:00 local: per day 8 h night, 4 h midday, 12 h base
    usage = split_usage(TOU, utc(8), utc(8, day=2), 48_000, idle=False)
    assert usage == (
        UsageBucket(0, 24_000, 2 * 12 * 3600, 0),
        UsageBucket(1, 16_000, 2 * 8 * 3600, 0),
        UsageBucket(2, 8_000, 2 * 4 * 3600, 0),
    )


def test_idle_interval_books_idle_seconds() -> None:
    usage = split_usage(TOU, utc(5.5), utc(6.5), 0, idle=True)
    assert usage == (UsageBucket(0, 0, 0, 1800), UsageBucket(1, 0, 0, 1800))


def test_energy_shared_by_largest_remainder() -> None:
    # 30 s before 10:00, 60 s after: 10 Wh -> 3.33 / 6.67 -> 3 / 7
    usage = split_usage(TOU, utc(10) - 30, utc(10) + 60, 10, idle=False)
    assert usage == (UsageBucket(0, 3, 30, 0), UsageBucket(2, 7, 60, 0))
    # equal shares, an odd Wh: the tie goes to the lower index
    usage = split_usage(TOU, utc(10) - 30, utc(10) + 30, 3, idle=False)
    assert usage == (UsageBucket(0, 2, 30, 0), UsageBucket(2, 1, 30, 0))


def test_seconds_follow_rounded_bounds() -> None:
    usage = split_usage(FLAT, MONDAY + 0.6, MONDAY + 10.4, 5, idle=False)
    assert usage == (UsageBucket(0, 5, 9, 0),)  # round(10.4) - round(0.6) = 10 - 1


def test_sub_second_interval_gives_its_energy_to_its_midpoint() -> None:
    boundary = utc(10)  # base before, midday after
    assert split_usage(TOU, boundary - 0.45, boundary - 0.05, 2, idle=False) == (
        UsageBucket(0, 2, 0, 0),
    )
    assert split_usage(TOU, boundary + 0.05, boundary + 0.45, 2, idle=False) == (
        UsageBucket(2, 2, 0, 0),
    )
    assert split_usage(TOU, boundary + 0.1, boundary + 0.2, 0, idle=False) == ()


@pytest.mark.parametrize(
    ("start", "end", "wh", "idle", "message"),
    [
        (10.0, 9.0, 0, False, "ends before it starts"),
        (math.nan, 9.0, 0, False, "finite"),
        (0.0, math.inf, 0, False, "finite"),
        (0.0, 10.0, -1, False, "wh must be in"),
        (0.0, 10.0, 1.5, False, "wh must be an integer"),
        (0.0, 10.0, 1, True, "idle interval cannot carry energy"),
    ],
)
def test_split_refuses_bad_intervals(
    start: float, end: float, wh: int, idle: bool, message: str
) -> None:
    with pytest.raises(TariffError, match=message):
        split_usage(TOU, start, end, wh, idle=idle)


def test_merge_sums_per_index_and_sorts() -> None:
    a = (UsageBucket(2, 1, 2, 3), UsageBucket(0, 10, 20, 30))
    b = (UsageBucket(0, 1, 1, 1), UsageBucket(1, 5, 5, 5))
    assert merge_usage(a, b) == (
        UsageBucket(0, 11, 21, 31),
        UsageBucket(1, 5, 5, 5),
        UsageBucket(2, 1, 2, 3),
    )
    assert merge_usage((), ()) == ()


def test_usage_bucket_validates_itself() -> None:
    with pytest.raises(TariffError, match="usage wh must be in"):
        UsageBucket(0, -1, 0, 0)
    with pytest.raises(TariffError, match="usage idle_s must be an integer"):
        UsageBucket(0, 0, 0, 1.0)  # type: ignore[arg-type]


def test_fractional_epoch_is_the_second_it_falls_in() -> None:
    assert bucket_index_at(TOU, utc(10) - 0.5) == 0
    assert bucket_index_at(TOU, utc(10) + 0.5) == 2


def test_tariff_takes_a_list_of_periods_as_a_tuple() -> None:
    tariff = Tariff("L", "EUR", tou=[TouPeriod(0, 60, 1, 1)])  # type: ignore[arg-type]
    assert tariff.tou == (TouPeriod(0, 60, 1, 1),)
    assert hash(tariff) == hash(Tariff("L", "EUR", tou=(TouPeriod(0, 60, 1, 1),)))
