"""Properties of the cost function and of usage splitting, over generated tariffs."""

from __future__ import annotations

import itertools
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from qr_extension.tariff import (
    PRICE_SCALE,
    Limits,
    Tariff,
    TouPeriod,
    UsageBucket,
    bucket_index_at,
    compute_cost,
    currency_exponent,
    limit_reached,
    limits_from_claim,
    limits_to_claim,
    merge_usage,
    split_usage,
    tariff_from_claim,
    tariff_to_claim,
    usage_from_claim,
    usage_to_claim,
)

# no per-example deadline: several people run tests at once on a 2-core machine
relaxed = settings(deadline=None)
prices = st.integers(0, 200_000)
epochs = st.integers(1_600_000_000, 2_000_000_000)


@st.composite
def tou_periods(draw: st.DrawFn) -> tuple[TouPeriod, ...]:
    """Non-overlapping periods: consecutive spans between sorted boundaries, some kept, all
    turned by one offset so that some cross midnight."""
    bounds = sorted(draw(st.sets(st.integers(0, 1439), min_size=2, max_size=7)))
    shift = draw(st.integers(0, 1439))
    periods = []
    for low, high in itertools.pairwise(bounds):
        if draw(st.booleans()):
            periods.append(
                TouPeriod((low + shift) % 1440, (high + shift) % 1440, draw(prices), draw(prices))
            )
    return tuple(periods)


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    idle_price = draw(st.none() | prices)
    return Tariff(
        id=draw(
            st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=36)
        ),
        currency=draw(st.sampled_from(["EUR", "JPY", "KWD", "CNY"])),
        fixed_fee=draw(prices),
        energy_price=draw(prices),
        time_price=draw(prices),
        idle_price=idle_price,
        idle_grace_min=0 if idle_price is None else draw(st.integers(0, 60)),
        tou=draw(st.just(()) | tou_periods()),
        tz_offset_min=draw(st.integers(-840, 840)),
        cap=draw(st.none() | st.integers(0, 100_000)),
    )


def buckets_for(tariff: Tariff) -> st.SearchStrategy[tuple[UsageBucket, ...]]:
    bucket = st.builds(
        UsageBucket,
        st.integers(0, len(tariff.tou)),
        st.integers(0, 200_000),
        st.integers(0, 86_400),
        st.integers(0, 86_400),
    )
    return st.lists(bucket, max_size=4).map(lambda bs: merge_usage(bs, ()))


def reference_total(tariff: Tariff, usage: tuple[UsageBucket, ...]) -> int:
    """The cost again, with fractions and per-bucket parts: an independent reading of the rules."""
    prices = [(tariff.energy_price, tariff.time_price)]
    prices += [(p.energy_price, p.time_price) for p in tariff.tou]
    exact = Fraction(tariff.fixed_fee)
    for b in usage:
        e, t = prices[b.tou_index]
        exact += Fraction(e * b.wh, 1000) + Fraction(t * b.charging_s, 3600)
    idle = max(0, sum(b.idle_s for b in usage) - 60 * tariff.idle_grace_min)
    exact += Fraction((tariff.idle_price or 0) * idle, 3600)
    minor = exact / PRICE_SCALE * 10 ** currency_exponent(tariff.currency)
    rounded = int(minor + Fraction(1, 2))  # half-up for non-negative values
    return rounded if tariff.cap is None else min(rounded, tariff.cap)


@relaxed
@given(st.data())
def test_claims_round_trip(data: st.DataObject) -> None:
    tariff = data.draw(tariffs())
    claim = tariff_to_claim(tariff)
    assert tariff_from_claim(claim) == tariff
    # canonical shortest form: a written optional member is never a trailing default
    assert 5 <= len(claim) <= 10
    assert len(claim) == 5 or claim[-1] != [[], 0, None, 0, None][len(claim) - 6]
    usage = data.draw(buckets_for(tariff))
    assert usage_from_claim(usage_to_claim(usage), tariff=tariff) == usage
    limits = Limits(
        data.draw(st.integers(0, 10**6)),
        data.draw(st.none() | st.integers(1, 10**6)),
        data.draw(st.none() | st.integers(1, 10**6)),
    )
    lim = limits_to_claim(limits)
    assert limits_from_claim(lim) == limits
    assert 1 <= len(lim) <= 3 and lim[-1] is not None


@relaxed
@given(st.data())
def test_cost_matches_reference_and_stays_within_bounds(data: st.DataObject) -> None:
    tariff = data.draw(tariffs())
    usage = data.draw(buckets_for(tariff))
    limit = data.draw(st.none() | st.integers(0, 100_000))
    cost = compute_cost(tariff, usage, limit_amount=limit)
    expected = reference_total(tariff, usage)
    assert cost.total == (expected if limit is None else min(expected, limit))
    assert cost.total >= 0
    assert tariff.cap is None or cost.total <= tariff.cap
    assert limit is None or cost.total <= limit
    # the exact parts add up to the whole before rounding
    parts = cost.fixed + cost.energy + cost.time + cost.idle
    assert abs(parts * 10 ** currency_exponent(tariff.currency) - cost.total) <= 0.5 or cost.capped


@relaxed
@given(st.data())
def test_bucket_costs_add_up_to_the_whole(data: st.DataObject) -> None:
    tariff = data.draw(tariffs())
    usage = data.draw(buckets_for(tariff))
    whole = compute_cost(tariff, usage)
    singles = [compute_cost(tariff, [b]) for b in usage]
    assert whole.energy == sum((c.energy for c in singles), start=whole.energy * 0)
    # time parts that are no finite decimal are carried to 40 significant digits
    assert abs(Fraction(whole.time) - sum(Fraction(c.time) for c in singles)) < Fraction(1, 10**30)


@relaxed
@given(st.data())
def test_cost_is_monotonic_in_energy_and_time(data: st.DataObject) -> None:
    tariff = data.draw(tariffs())
    usage = data.draw(buckets_for(tariff))
    index = data.draw(st.integers(0, len(tariff.tou)))
    more = UsageBucket(index, *data.draw(st.tuples(*[st.integers(0, 10_000)] * 3)))
    limit = data.draw(st.none() | st.integers(0, 100_000))
    before = compute_cost(tariff, usage, limit_amount=limit).total
    after = compute_cost(tariff, merge_usage(usage, [more]), limit_amount=limit).total
    assert after >= before


@relaxed
@given(st.data())
def test_cost_limit_means_cost_reached_the_amount(data: st.DataObject) -> None:
    tariff = data.draw(tariffs())
    usage = data.draw(buckets_for(tariff))
    limits = Limits(data.draw(st.integers(0, 100_000)))
    reached = limit_reached(tariff, limits, usage, elapsed_s=0)
    assert (reached is not None) == (compute_cost(tariff, usage).total >= limits.amount)


def brute_force_seconds(tariff: Tariff, first: int, last: int) -> dict[int, int]:
    """Seconds per bucket by walking minute by minute with bucket_index_at."""
    seconds: dict[int, int] = {}
    now = first
    while now < last:
        step = min(last, now - now % 60 + 60) - now
        index = bucket_index_at(tariff, now)
        seconds[index] = seconds.get(index, 0) + step
        now += step
    return seconds


@settings(max_examples=60, deadline=None)
@given(
    st.data(),
    epochs,
    st.floats(0, 3 * 86_400, allow_nan=False),
    st.floats(0, 1, exclude_max=True),
    st.integers(0, 100_000),
    st.booleans(),
)
def test_split_preserves_totals_and_matches_the_clock(
    data: st.DataObject, epoch: int, length: float, fraction: float, wh: int, idle: bool
) -> None:
    tariff = data.draw(tariffs())
    start = epoch + fraction
    end = start + length
    wh = 0 if idle else wh
    usage = split_usage(tariff, start, end, wh, idle=idle)
    assert sum(b.wh for b in usage) == wh
    assert sum(b.charging_s + b.idle_s for b in usage) == round(end) - round(start)
    assert all(b.charging_s == 0 for b in usage) if idle else all(b.idle_s == 0 for b in usage)
    assert [b.tou_index for b in usage] == sorted({b.tou_index for b in usage})
    expected = brute_force_seconds(tariff, round(start), round(end))
    assert {b.tou_index: b.charging_s + b.idle_s for b in usage if b.charging_s + b.idle_s} == {
        k: s for k, s in expected.items() if s
    }


@relaxed
@given(st.data(), epochs, st.lists(st.integers(0, 40_000), min_size=2, max_size=5))
def test_consecutive_intervals_add_up_to_the_session(
    data: st.DataObject, epoch: int, steps: list[int]
) -> None:
    tariff = data.draw(tariffs())
    marks = [epoch + sum(steps[:i]) + 0.25 * i for i in range(len(steps) + 1)]
    pieces: tuple[UsageBucket, ...] = ()
    for start, end in itertools.pairwise(marks):
        pieces = merge_usage(pieces, split_usage(tariff, start, end, 0, idle=False))
    assert pieces == split_usage(tariff, marks[0], marks[-1], 0, idle=False)


@relaxed
@given(st.data())
def test_merge_is_associative_and_commutative(data: st.DataObject) -> None:
    tariff = data.draw(tariffs())
    a, b, c = (data.draw(buckets_for(tariff)) for _ in range(3))
    assert merge_usage(a, b) == merge_usage(b, a)
    assert merge_usage(merge_usage(a, b), c) == merge_usage(a, merge_usage(b, c))
    assert merge_usage(a, ()) == a
