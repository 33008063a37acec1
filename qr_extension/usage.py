"""Usage buckets: what a session consumed in each price bucket, and how metering fills them.

A bucket is ``[tou_index, wh, charging_s, idle_s]``: index 0 is the base price (all usage of a
tariff without time-of-use, and time no period covers), index ``k >= 1`` is ``tou[k - 1]``, so
that a gap in a time-of-use table has a price instead of an error. The charger splits every
metering interval at period boundaries with :func:`split_usage` and accumulates with
:func:`merge_usage`; the CSMS recomputes the cost from the same buckets. Everything is integer
so that both sides agree to the unit.

This module sits below :mod:`qr_extension.tariff` (which re-exports its names): it needs the
tariff types only for annotations, so the two modules never import each other at run time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qr_extension.errors import TariffError

if TYPE_CHECKING:
    from qr_extension.tariff import Tariff

MAX_INT = 2**53 - 1  # the largest integer a JavaScript client reads exactly
MINUTES_PER_DAY = 1440
SECONDS_PER_DAY = 86_400


def check_int(value: object, name: str, low: int = 0, high: int = MAX_INT) -> int:
    """``value`` if it is a plain ``int`` (not ``bool``) in ``low..high``, else a TariffError."""
    if type(value) is not int:
        raise TariffError(f"{name} must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise TariffError(f"{name} must be in {low}..{high}, got {value}")
    return value


def period_spans(start_minute: int, end_minute: int) -> list[tuple[int, int]]:
    """The minute ranges ``[a, b)`` of one day covered by a period; a period whose end is not
    after its start crosses midnight (``end == start`` is the whole day)."""
    if start_minute < end_minute:
        return [(start_minute, end_minute)]
    spans = [(start_minute, MINUTES_PER_DAY)]
    if end_minute > 0:
        spans.append((0, end_minute))
    return spans


@dataclass(frozen=True, slots=True)
class UsageBucket:
    """Energy and time in one price bucket (claim ``u`` entry
    ``[index, wh, charging_s, idle_s]``)."""

    tou_index: int
    wh: int
    charging_s: int
    idle_s: int

    def __post_init__(self) -> None:
        check_int(self.tou_index, "usage bucket index")
        check_int(self.wh, "usage wh")
        check_int(self.charging_s, "usage charging_s")
        check_int(self.idle_s, "usage idle_s")


def usage_to_claim(buckets: Iterable[UsageBucket]) -> list[list[int]]:
    """Claim ``u``: ``[[index, wh, charging_s, idle_s], ...]`` in the given order."""
    return [[b.tou_index, b.wh, b.charging_s, b.idle_s] for b in buckets]


def usage_from_claim(obj: object, *, tariff: Tariff | None = None) -> tuple[UsageBucket, ...]:
    """Parse claim ``u`` strictly: a list of 4-integer lists, no index twice; with ``tariff``
    every index must also name one of its buckets (``0..len(tariff.tou)``)."""
    if type(obj) is not list:
        raise TariffError("u must be a list of [index, wh, charging_s, idle_s]")
    highest = MAX_INT if tariff is None else len(tariff.tou)
    buckets: list[UsageBucket] = []
    seen: set[int] = set()
    for item in obj:
        if type(item) is not list or len(item) != 4:
            raise TariffError("each u entry must be a list [index, wh, charging_s, idle_s]")
        index = check_int(item[0], "usage bucket index", 0, highest)
        if index in seen:
            raise TariffError(f"usage bucket index {index} appears twice")
        seen.add(index)
        buckets.append(UsageBucket(index, item[1], item[2], item[3]))
    return tuple(buckets)


def bucket_index_at(tariff: Tariff, epoch_s: float) -> int:
    """The bucket that prices the second starting at ``epoch_s`` (UTC): the time-of-use period
    that contains its local minute (``UTC + tz``), or 0 when none does."""
    minute = (math.floor(epoch_s) // 60 + tariff.tz_offset_min) % MINUTES_PER_DAY
    for k, period in enumerate(tariff.tou, start=1):
        for low, high in period_spans(period.start_minute, period.end_minute):
            if low <= minute < high:
                return k
    return 0


def _seconds_before(tariff: Tariff, local_s: int) -> list[int]:
    """Seconds of local time in ``[0, local_s)`` per bucket (``local_s`` counts from the local
    epoch; may be negative). Differences of two calls give any interval exactly."""
    days, rest = divmod(local_s, SECONDS_PER_DAY)
    per_bucket = [0] * (len(tariff.tou) + 1)
    for k, period in enumerate(tariff.tou, start=1):
        for low, high in period_spans(period.start_minute, period.end_minute):
            low_s, high_s = low * 60, high * 60
            per_bucket[k] += days * (high_s - low_s) + max(0, min(high_s, rest) - low_s)
    per_bucket[0] = local_s - sum(per_bucket[1:])
    return per_bucket


def _share(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` into integers that sum to ``total``
    (largest remainder; ties go to the lower index)."""
    whole = sum(weights)
    quotas = [divmod(total * w, whole) for w in weights]
    shares = [q for q, _ in quotas]
    leftover = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-quotas[i][1], i))
    for i in by_remainder[:leftover]:
        shares[i] += 1
    return shares


def split_usage(
    tariff: Tariff, start_s: float, end_s: float, wh: int, *, idle: bool
) -> tuple[UsageBucket, ...]:
    """Book one metering interval ``[start_s, end_s)`` (UTC epoch seconds) into buckets.

    Seconds are counted on the integer timeline ``[round(start_s), round(end_s))``, so the
    buckets of consecutive intervals add up exactly to the whole session. ``wh`` is shared in
    proportion to the seconds of each bucket with integers that sum to ``wh``; an interval
    shorter than a rounded second gives its energy to the bucket of its midpoint. With ``idle``
    the seconds are idle time and ``wh`` must be 0. Buckets with nothing are left out.
    """
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise TariffError("interval bounds must be finite")
    if end_s < start_s:
        raise TariffError(f"interval ends before it starts ({end_s} < {start_s})")
    check_int(wh, "wh")
    if idle and wh:
        raise TariffError("an idle interval cannot carry energy")
    offset = tariff.tz_offset_min * 60
    first, last = round(start_s), round(end_s)
    before = _seconds_before(tariff, first + offset)
    upto = _seconds_before(tariff, last + offset)
    seconds = [b - a for a, b in zip(before, upto, strict=True)]
    if last == first:
        if not wh:
            return ()
        index = bucket_index_at(tariff, math.floor((start_s + end_s) / 2))
        return (UsageBucket(index, wh, 0, 0),)
    energy = _share(wh, seconds)
    return tuple(
        UsageBucket(k, energy[k], 0 if idle else s, s if idle else 0)
        for k, s in enumerate(seconds)
        if s or energy[k]
    )


def merge_usage(a: Iterable[UsageBucket], b: Iterable[UsageBucket]) -> tuple[UsageBucket, ...]:
    """The sum of two usages, one bucket per index, sorted by index."""
    totals: dict[int, tuple[int, int, int]] = {}
    for bucket in (*a, *b):
        wh, charging, idle = totals.get(bucket.tou_index, (0, 0, 0))
        totals[bucket.tou_index] = (
            wh + bucket.wh,
            charging + bucket.charging_s,
            idle + bucket.idle_s,
        )
    return tuple(UsageBucket(k, *totals[k]) for k in sorted(totals))
