"""Billing models (tariffs), order limits, usage buckets and the one cost function.

Prices are integers in 1/10,000 of the currency unit (``PRICE_SCALE``); amounts (``cap``,
limits, costs) are integers in minor units (ISO 4217 exponent). The same pure functions run on
the charger and in the CSMS, so both sides reach the same amount to the minor unit.

Usage bucket index convention: index 0 holds usage priced at the base ``e``/``t`` prices (the
only bucket without time-of-use, and time not covered by any period); index ``k >= 1`` holds
usage inside ``tou[k - 1]``.

STATUS: types fixed; cost, usage splitting and limits are being implemented (issue 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

PRICE_SCALE = 10_000

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


@dataclass(frozen=True, slots=True)
class Limits:
    """An order's limits (claim ``lim``): ``amount`` (the hold) is always present."""

    amount: int  # amt, minor units
    energy_wh: int | None = None  # wh
    duration_s: int | None = None  # s


@dataclass(frozen=True, slots=True)
class UsageBucket:
    """Energy and time in one price bucket (claim ``u`` entry ``[index, wh, charging_s, idle_s]``)."""

    tou_index: int
    wh: int
    charging_s: int
    idle_s: int


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
