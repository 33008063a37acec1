"""Billing models (tariffs), order limits and the one cost function.

Prices are integers in 1/10,000 of the currency unit (``PRICE_SCALE``); amounts (``cap``,
limits, costs) are integers in minor units (ISO 4217 exponent). The same pure functions run on
the charger and in the CSMS, so both sides reach the same amount to the minor unit. The rules
(and the claim layout) are written down in docs/protocol.md, "Billing model and cost".

The types validate themselves, so a :class:`Tariff` that exists can be priced and signed.
Usage buckets and their metering live in :mod:`qr_extension.usage`; their names are
re-exported here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, localcontext
from enum import StrEnum
from typing import Any

from qr_extension.errors import TariffError
from qr_extension.usage import (
    MINUTES_PER_DAY,
    UsageBucket,
    bucket_index_at,
    check_int,
    merge_usage,
    period_spans,
    split_usage,
    usage_from_claim,
    usage_to_claim,
)

__all__ = [
    "PRICE_SCALE",
    "Cost",
    "LimitReason",
    "Limits",
    "Tariff",
    "TouPeriod",
    "UsageBucket",
    "bucket_index_at",
    "compute_cost",
    "currency_exponent",
    "limit_reached",
    "limits_from_claim",
    "limits_to_claim",
    "max_amount",
    "merge_usage",
    "split_usage",
    "tariff_from_claim",
    "tariff_to_claim",
    "usage_from_claim",
    "usage_to_claim",
]

PRICE_SCALE = 10_000
MAX_TZ_MIN = 14 * 60
MAX_TARIFF_ID = 36
_CURRENCY = re.compile(r"[A-Z]{3}")

# ISO 4217 minor-unit exponents for the currencies we expect; others default to 2.
CURRENCY_EXPONENTS: dict[str, int] = {
    "BHD": 3, "CLP": 0, "CNY": 2, "EUR": 2, "GBP": 2, "HKD": 2, "ISK": 0, "JOD": 3,
    "JPY": 0, "KRW": 0, "KWD": 3, "OMR": 3, "TND": 3, "USD": 2, "VND": 0,
}  # fmt: skip


def currency_exponent(currency: str) -> int:
    """Minor-unit exponent of an ISO 4217 code (2 where not listed)."""
    return CURRENCY_EXPONENTS.get(currency, 2)


class LimitReason(StrEnum):
    """Why a running session was suspended by its order's limits (settlement ``rsn``)."""

    ENERGY = "EnergyLimitReached"
    COST = "CostLimitReached"
    TIME = "TimeLimitReached"


@dataclass(frozen=True, slots=True)
class TouPeriod:
    """A time-of-use period ``[start_minute, end_minute)`` of local time; crosses midnight when
    ``end_minute <= start_minute``. Claim form: ``[from, to, e, t]``."""

    start_minute: int
    end_minute: int
    energy_price: int
    time_price: int

    def __post_init__(self) -> None:
        check_int(self.start_minute, "tou from", 0, MINUTES_PER_DAY - 1)
        check_int(self.end_minute, "tou to", 0, MINUTES_PER_DAY)
        check_int(self.energy_price, "tou e")
        check_int(self.time_price, "tou t")


@dataclass(frozen=True, slots=True)
class Tariff:
    """A billing model (claim ``tar``)."""

    id: str  # id
    currency: str  # cur
    fixed_fee: int = 0  # f, price units
    energy_price: int = 0  # e, price units per kWh
    time_price: int = 0  # t, price units per hour of charging
    idle_price: int | None = None  # i, price units per idle hour after the grace
    idle_grace_min: int = 0  # ig
    tou: tuple[TouPeriod, ...] = ()
    tz_offset_min: int = 0  # tz, local time = UTC + tz minutes
    cap: int | None = None  # cap, minor units

    def __post_init__(self) -> None:
        if type(self.id) is not str or not 1 <= len(self.id) <= MAX_TARIFF_ID:
            raise TariffError(f"tariff id must be a string of 1..{MAX_TARIFF_ID} characters")
        if not all(" " <= c <= "~" for c in self.id):
            raise TariffError("tariff id must be printable ASCII")
        if type(self.currency) is not str or not _CURRENCY.fullmatch(self.currency):
            raise TariffError("cur must be three uppercase letters (ISO 4217)")
        check_int(self.fixed_fee, "f")
        check_int(self.energy_price, "e")
        check_int(self.time_price, "t")
        check_int(self.idle_grace_min, "ig")
        if self.idle_price is not None:
            check_int(self.idle_price, "i")
        elif self.idle_grace_min:
            raise TariffError("ig (idle grace) is given without i (idle price)")
        check_int(self.tz_offset_min, "tz", -MAX_TZ_MIN, MAX_TZ_MIN)
        if self.cap is not None:
            check_int(self.cap, "cap")
        if not isinstance(self.tou, tuple | list):
            raise TariffError("tou must be a sequence of periods")
        object.__setattr__(self, "tou", tuple(self.tou))
        if not all(isinstance(p, TouPeriod) for p in self.tou):
            raise TariffError("tou entries must be TouPeriod")
        _check_no_overlap(self.tou)


def _check_no_overlap(tou: tuple[TouPeriod, ...]) -> None:
    spans = sorted(
        (low, high, k)
        for k, p in enumerate(tou, start=1)
        for low, high in period_spans(p.start_minute, p.end_minute)
    )
    for (_, high, k), (low, _, j) in itertools.pairwise(spans):
        if low < high:
            raise TariffError(f"tou periods {min(k, j)} and {max(k, j)} overlap")


@dataclass(frozen=True, slots=True)
class Limits:
    """An order's limits (claim ``lim``): ``amount`` (the hold) is always present."""

    amount: int  # amt, minor units
    energy_wh: int | None = None  # wh
    duration_s: int | None = None  # s

    def __post_init__(self) -> None:
        check_int(self.amount, "amt")
        if self.energy_wh is not None:
            check_int(self.energy_wh, "wh", 1)
        if self.duration_s is not None:
            check_int(self.duration_s, "s", 1)


@dataclass(frozen=True, slots=True)
class Cost:
    """A cost and its exact parts (currency units, unrounded) and the total in minor units,
    rounded once, half-up, then held to the tariff cap and the order's amount limit."""

    fixed: Decimal
    energy: Decimal
    time: Decimal
    idle: Decimal
    total: int
    capped: bool


# --- claims -------------------------------------------------------------------------------

# The claims are positional arrays: every byte is in the start QR.
TariffClaim = list[str | int | list[list[int]] | None]
LimitsClaim = list[int | None]

_TAR_LAYOUT = "[id, cur, f, e, t, tou?, tz?, i?, ig?, cap?]"
_LIM_LAYOUT = "[amt, wh?, s?]"
_TAR_REQUIRED = 5  # id cur f e t
# The optional members of tar after the five required ones, at their defaults. A trailing run
# of defaults is left out; a default before a present member is written.
_TAR_DEFAULTS: tuple[object, ...] = ([], 0, None, 0, None)  # tou tz i ig cap


def _is_default(value: object, default: object) -> bool:
    return type(value) is type(default) and value == default


def _shortest(claim: list[Any], defaults: tuple[object, ...]) -> list[Any]:
    """``claim`` without the trailing members that equal their defaults (aligned to its end)."""
    first_optional = len(claim) - len(defaults)
    end = len(claim)
    while end > first_optional and _is_default(claim[end - 1], defaults[end - 1 - first_optional]):
        end -= 1
    return claim[:end]


def tariff_to_claim(tariff: Tariff) -> TariffClaim:
    """Claim ``tar``: ``[id, cur, f, e, t, tou, tz, i, ig, cap]`` with ``tou`` as
    ``[[from, to, e, t], ...]``; trailing members at their defaults (``[]``, 0, null, 0, null)
    are left out, so a flat tariff is ``[id, cur, f, e, t]``."""
    tou = [[p.start_minute, p.end_minute, p.energy_price, p.time_price] for p in tariff.tou]
    claim: TariffClaim = [
        tariff.id,
        tariff.currency,
        tariff.fixed_fee,
        tariff.energy_price,
        tariff.time_price,
        tou,
        tariff.tz_offset_min,
        tariff.idle_price,
        tariff.idle_grace_min,
        tariff.cap,
    ]
    return _shortest(claim, _TAR_DEFAULTS)


def _array(obj: object, name: str, layout: str, low: int, high: int) -> list[Any]:
    if type(obj) is not list:
        raise TariffError(f"{name} must be a JSON array {layout}")
    if not low <= len(obj) <= high:
        raise TariffError(f"{name} must have {low}..{high} members {layout}, got {len(obj)}")
    return obj


def _optional_int(value: object, name: str, low: int = 0) -> int | None:
    return None if value is None else check_int(value, name, low)


def _tou_from_claim(obj: object) -> tuple[TouPeriod, ...]:
    if type(obj) is not list:
        raise TariffError("tou must be a list of [from, to, e, t] ([] for none)")
    periods = []
    for item in obj:
        if type(item) is not list or len(item) != 4:
            raise TariffError("each tou entry must be a list [from, to, e, t]")
        periods.append(TouPeriod(*item))
    return tuple(periods)


def tariff_from_claim(obj: object) -> Tariff:
    """Parse claim ``tar`` strictly (an array of 5..10 members, exact types, ranges, no
    overlapping periods); TariffError if not valid. Trailing defaults are accepted."""
    m = _array(obj, "tar", _TAR_LAYOUT, _TAR_REQUIRED, _TAR_REQUIRED + len(_TAR_DEFAULTS))
    tou, tz, idle_price, idle_grace, cap = m[_TAR_REQUIRED:] + list(
        _TAR_DEFAULTS[len(m) - _TAR_REQUIRED :]
    )
    return Tariff(
        id=m[0],
        currency=m[1],
        fixed_fee=m[2],
        energy_price=m[3],
        time_price=m[4],
        tou=_tou_from_claim(tou),
        tz_offset_min=check_int(tz, "tz", -MAX_TZ_MIN, MAX_TZ_MIN),
        idle_price=_optional_int(idle_price, "i"),
        idle_grace_min=check_int(idle_grace, "ig"),
        cap=_optional_int(cap, "cap"),
    )


def limits_to_claim(limits: Limits) -> LimitsClaim:
    """Claim ``lim``: ``[amt, wh, s]`` without trailing nulls (``[amt]``, ``[amt, wh]``,
    ``[amt, null, s]``)."""
    claim: LimitsClaim = [limits.amount, limits.energy_wh, limits.duration_s]
    return _shortest(claim, (None, None))


def limits_from_claim(obj: object) -> Limits:
    """Parse claim ``lim`` strictly (an array of 1..3 members); TariffError if not valid."""
    m = _array(obj, "lim", _LIM_LAYOUT, 1, 3)
    energy_wh, duration_s = m[1:] + [None] * (3 - len(m))
    return Limits(
        amount=check_int(m[0], "amt"),
        energy_wh=_optional_int(energy_wh, "wh", 1),
        duration_s=_optional_int(duration_s, "s", 1),
    )


# --- cost ---------------------------------------------------------------------------------

# Energy is priced per kWh (Wh / 1000) and time per hour (s / 3600): 18,000 price-unit
# fractions are the common denominator, so the whole cost is one exact integer ratio.
_COMMON = 18_000


def _decimal(numerator: int, denominator: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 40
        return Decimal(numerator) / Decimal(denominator)


def _round_half_up(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (2 * remainder >= denominator)


def compute_cost(
    tariff: Tariff, usage: Iterable[UsageBucket], *, limit_amount: int | None = None
) -> Cost:
    """The cost of one session: ``f + sum_k(e_k * kWh_k + t_k * charging_h_k) + i * idle_h``
    where idle hours are the idle seconds of all buckets beyond ``ig`` minutes. Exact, rounded
    once half-up to minor units, then held to ``cap`` and ``limit_amount``."""
    prices = [(tariff.energy_price, tariff.time_price)]
    prices += [(p.energy_price, p.time_price) for p in tariff.tou]
    energy = charging = idle_total = 0  # price units x Wh, price units x s, s
    for bucket in usage:
        if bucket.tou_index >= len(prices):
            raise TariffError(f"usage bucket {bucket.tou_index} is not a bucket of the tariff")
        energy_price, time_price = prices[bucket.tou_index]
        energy += energy_price * bucket.wh
        charging += time_price * bucket.charging_s
        idle_total += bucket.idle_s
    idle = (tariff.idle_price or 0) * max(0, idle_total - tariff.idle_grace_min * 60)
    exact = (
        tariff.fixed_fee * _COMMON
        + energy * (_COMMON // 1000)
        + (charging + idle) * (_COMMON // 3600)
    )
    unrounded = _round_half_up(
        exact * 10 ** currency_exponent(tariff.currency), _COMMON * PRICE_SCALE
    )
    total = unrounded
    if tariff.cap is not None:
        total = min(total, tariff.cap)
    if limit_amount is not None:
        total = min(total, check_int(limit_amount, "limit amount"))
    return Cost(
        fixed=_decimal(tariff.fixed_fee, PRICE_SCALE),
        energy=_decimal(energy, 1000 * PRICE_SCALE),
        time=_decimal(charging, 3600 * PRICE_SCALE),
        idle=_decimal(idle, 3600 * PRICE_SCALE),
        total=total,
        capped=total < unrounded,
    )


def max_amount(tariff: Tariff, requested: int | None, configured_max: int) -> int:
    """An order's ``lim.amt`` (and hold): min of the driver's request (None: "until full"), the
    tariff ``cap`` and the configured maximum per order, never negative."""
    amount = configured_max
    if requested is not None:
        amount = min(amount, requested)
    if tariff.cap is not None:
        amount = min(amount, tariff.cap)
    return max(0, amount)


def limit_reached(
    tariff: Tariff, limits: Limits, usage: Iterable[UsageBucket], *, elapsed_s: float
) -> LimitReason | None:
    """The first limit the running session has reached (energy, then time, then cost), or
    None. The cost is held to the tariff cap but not to the limit itself."""
    buckets = tuple(usage)
    if limits.energy_wh is not None and sum(b.wh for b in buckets) >= limits.energy_wh:
        return LimitReason.ENERGY
    if limits.duration_s is not None and elapsed_s >= limits.duration_s:
        return LimitReason.TIME
    if compute_cost(tariff, buckets).total >= limits.amount:
        return LimitReason.COST
    return None
