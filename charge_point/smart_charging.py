"""Smart charging of the reference charger: the charging profiles the CSMS installed, the limit
they put on each EVSE at a moment, and the composite schedule.

Profiles are kept per EVSE (0: the whole station) by purpose and stack level, in the station's
durable store, so they survive a restart. The rules are OCPP's, the same in 1.6 and 2.0.1:

* a new profile replaces one with the same id, or the same EVSE, purpose and stack level;
* the station-wide maximum (1.6 ``ChargePointMaxProfile``, 2.0.1 ``ChargingStationMaxProfile``)
  lives on EVSE 0 only, a transaction profile (``TxProfile``) only on an EVSE with a running
  transaction, and it goes when the transaction ends;
* on an EVSE the transaction profile with the highest stack level that is in force wins, else
  the default profile (``TxDefaultProfile``) of that EVSE, else the default of EVSE 0; the
  station maximum caps whatever won. A profile past its schedule or its validity gives way to
  the next one down.

Limits are in A or W per period, with the number of phases (3 when not said); amperes become
watts at :data:`VOLTAGE_V` per phase. Everything here is a pure function of the profiles and
a time: the station asks for the limit at each step of its meters, the adapters for the
composite schedule.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from charge_point.errors import ProfileInvalid
from charge_point.store import Store
from qr_extension.wire import parse_ocpp_timestamp

VOLTAGE_V = 230.0  # per phase, for limits given in amperes
DEFAULT_PHASES = 3
STATION_MAX, TX_DEFAULT, TX = "StationMax", "TxDefault", "Tx"
PURPOSES = {
    "ChargePointMaxProfile": STATION_MAX,  # 1.6
    "ChargingStationMaxProfile": STATION_MAX,  # 2.0.1
    "TxDefaultProfile": TX_DEFAULT,
    "TxProfile": TX,
}
RECURRENCE_S = {"Daily": 86_400, "Weekly": 7 * 86_400}
STORE_KEY = "charging_profiles"


@dataclass(frozen=True, slots=True)
class Period:
    start_s: int
    limit: float
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """One installed profile, version-neutral (its first schedule: a 2.0.1 profile may carry
    up to three for ISO 15118 EVs; this charger has none)."""

    id: int
    evse_id: int
    stack_level: int
    purpose: str  # STATION_MAX | TX_DEFAULT | TX
    kind: str  # Absolute | Recurring | Relative
    unit: str  # A | W
    periods: tuple[Period, ...]
    installed_at: float
    recurrency: str | None = None
    valid_from: float | None = None
    valid_to: float | None = None
    transaction_id: str | None = None
    start: float | None = None  # startSchedule
    duration_s: int | None = None
    min_rate: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        values = dict(data)
        values["periods"] = tuple(Period(**p) for p in values["periods"])
        return cls(**values)


def _time(value: Any) -> float | None:
    return None if not value else parse_ocpp_timestamp(str(value)).timestamp()


def profile_from_ocpp(evse_id: int, data: Mapping[str, Any], *, installed_at: float) -> Profile:
    """A profile from the library's snake_cased ``csChargingProfiles`` (1.6) or
    ``chargingProfile`` (2.0.1) payload. Raises :class:`ProfileInvalid`."""
    purpose = PURPOSES.get(str(data.get("charging_profile_purpose")))
    if purpose is None:
        raise ProfileInvalid(f"purpose {data.get('charging_profile_purpose')} not settable")
    schedules = data["charging_schedule"]
    schedule = schedules[0] if isinstance(schedules, list) else schedules
    periods = tuple(
        Period(
            start_s=int(p["start_period"]),
            limit=float(p["limit"]),
            phases=None if p.get("number_phases") is None else int(p["number_phases"]),
        )
        for p in schedule["charging_schedule_period"]
    )
    if not periods or periods[0].start_s != 0:
        raise ProfileInvalid("the first period must start at 0")
    if any(b.start_s <= a.start_s for a, b in itertools.pairwise(periods)):
        raise ProfileInvalid("periods must start in increasing order")
    if any(p.limit < 0 for p in periods):
        raise ProfileInvalid("a limit below zero")
    kind = str(data["charging_profile_kind"])
    recurrency = data.get("recurrency_kind")
    if kind == "Recurring" and recurrency not in RECURRENCE_S:
        raise ProfileInvalid("a recurring profile needs recurrencyKind Daily or Weekly")
    txn = data.get("transaction_id")
    return Profile(
        id=int(data.get("charging_profile_id", data.get("id", 0))),
        evse_id=evse_id,
        stack_level=int(data["stack_level"]),
        purpose=purpose,
        kind=kind,
        unit=str(schedule["charging_rate_unit"]),
        periods=periods,
        installed_at=installed_at,
        recurrency=str(recurrency) if recurrency else None,
        valid_from=_time(data.get("valid_from")),
        valid_to=_time(data.get("valid_to")),
        transaction_id=None if txn is None else str(txn),
        start=_time(schedule.get("start_schedule")),
        duration_s=None if schedule.get("duration") is None else int(schedule["duration"]),
        min_rate=None
        if schedule.get("min_charging_rate") is None
        else float(schedule["min_charging_rate"]),
    )


def to_watts(limit: float, unit: str, phases: int | None) -> float:
    return limit * (phases or DEFAULT_PHASES) * VOLTAGE_V if unit == "A" else limit


def from_watts(watts: float, unit: str, phases: int | None) -> float:
    return watts / ((phases or DEFAULT_PHASES) * VOLTAGE_V) if unit == "A" else watts


@dataclass(frozen=True, slots=True)
class Limit:
    """What limits an EVSE at a moment: watts and phases (None: nothing but the hardware)."""

    watts: float
    phases: int | None = None


def schedule_start(profile: Profile, at: float, tx_start: float | None) -> float | None:
    """When the period of ``profile`` that covers ``at`` started counting, or None."""
    if profile.kind == "Relative":  # from the transaction's start; without one, from now
        return tx_start if tx_start is not None else at
    base = profile.start or profile.valid_from or profile.installed_at
    if profile.kind == "Recurring" and profile.recurrency in RECURRENCE_S:
        every = RECURRENCE_S[profile.recurrency]
        if at < base:
            return None
        return base + math.floor((at - base) / every) * every
    return base


def limit_of(profile: Profile, at: float, tx_start: float | None) -> Limit | None:
    """The limit ``profile`` sets at ``at``, or None when it is not in force then."""
    if profile.valid_from is not None and at < profile.valid_from:
        return None
    if profile.valid_to is not None and at >= profile.valid_to:
        return None
    start = schedule_start(profile, at, tx_start)
    if start is None:
        return None
    offset = at - start
    if offset < 0 or (profile.duration_s is not None and offset >= profile.duration_s):
        return None
    current = None
    for period in profile.periods:
        if period.start_s <= offset:
            current = period
    if current is None:
        return None
    return Limit(to_watts(current.limit, profile.unit, current.phases), current.phases)


def _first(profiles: Iterable[Profile], at: float, tx_start: float | None) -> Limit | None:
    """The limit of the highest stack level in force among ``profiles``."""
    for profile in sorted(profiles, key=lambda p: -p.stack_level):
        found = limit_of(profile, at, tx_start)
        if found is not None:
            return found
    return None


def _lower(a: Limit | None, b: Limit | None) -> Limit | None:
    if a is None or b is None:
        return a or b
    return a if a.watts <= b.watts else b


class ChargingProfiles:
    """The installed profiles of one station, persisted in its store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._profiles = [Profile.from_json(p) for p in store.get(STORE_KEY, [])]

    def __iter__(self) -> Any:
        return iter(list(self._profiles))

    def _save(self) -> None:
        self._store.put(STORE_KEY, [p.to_json() for p in self._profiles])

    def install(self, profile: Profile, *, transaction_id: str | None) -> bool:
        """Installs ``profile``; False (Rejected) when OCPP forbids it here: the station
        maximum on an EVSE, a transaction profile on EVSE 0 or on an EVSE without a running
        transaction (or naming another transaction). ``transaction_id`` is the one running on
        the profile's EVSE, if any."""
        if profile.purpose == STATION_MAX and profile.evse_id != 0:
            return False
        if profile.purpose == TX:
            if profile.evse_id == 0 or transaction_id is None:
                return False
            if profile.transaction_id not in (None, transaction_id):
                return False
            profile = replace(profile, transaction_id=transaction_id)
        self._profiles = [
            p
            for p in self._profiles
            if p.id != profile.id
            and not (
                p.evse_id == profile.evse_id
                and p.purpose == profile.purpose
                and p.stack_level == profile.stack_level
            )
        ]
        self._profiles.append(profile)
        self._save()
        return True

    def clear(
        self,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> bool:
        """Removes the profiles that match (by id when given, else by every criterion given;
        ``purpose`` as OCPP names it); whether any was removed (Accepted, else Unknown)."""
        wanted = PURPOSES.get(purpose, "?") if purpose is not None else None

        def matches(p: Profile) -> bool:
            if profile_id is not None:
                return p.id == profile_id
            return (
                (evse_id is None or p.evse_id == evse_id)
                and (wanted is None or p.purpose == wanted)
                and (stack_level is None or p.stack_level == stack_level)
            )

        kept = [p for p in self._profiles if not matches(p)]
        if len(kept) == len(self._profiles):
            return False
        self._profiles = kept
        self._save()
        return True

    def transaction_ended(self, evse_id: int) -> None:
        """A transaction profile lives as long as its transaction."""
        kept = [p for p in self._profiles if not (p.purpose == TX and p.evse_id == evse_id)]
        if len(kept) != len(self._profiles):
            self._profiles = kept
            self._save()

    # --- limits ------------------------------------------------------------------------
    def evse_limit(self, evse_id: int, at: float, tx_start: float | None) -> Limit | None:
        """The transaction / default profile limit of one EVSE (without the station max)."""
        if tx_start is not None:
            tx = _first(
                (p for p in self._profiles if p.purpose == TX and p.evse_id == evse_id),
                at,
                tx_start,
            )
            if tx is not None:
                return tx
        own = [p for p in self._profiles if p.purpose == TX_DEFAULT and p.evse_id == evse_id]
        found = _first(own, at, tx_start)
        if found is not None:
            return found
        station = [p for p in self._profiles if p.purpose == TX_DEFAULT and p.evse_id == 0]
        return _first(station, at, tx_start)

    def station_limit(self, at: float) -> Limit | None:
        return _first(
            (p for p in self._profiles if p.purpose == STATION_MAX and p.evse_id == 0), at, None
        )

    def limit(
        self, evse_id: int, at: float, tx_start: float | None, *, sharing: int = 1
    ) -> Limit | None:
        """What the EVSE may draw at ``at``: its own limit, capped by its share of the
        station maximum (``sharing`` EVSEs draw power at once)."""
        station = self.station_limit(at)
        if station is not None and sharing > 1:
            station = Limit(station.watts / sharing, station.phases)
        if evse_id == 0:
            return station
        return _lower(self.evse_limit(evse_id, at, tx_start), station)

    # --- composite schedule ------------------------------------------------------------
    def _breakpoints(self, start: float, end: float, tx_start: float | None) -> list[float]:
        """Every moment in [start, end) where some profile's limit may change."""
        points = {start}
        for p in self._profiles:
            points.update(t for t in (p.valid_from, p.valid_to) if t is not None)
            bases: list[float] = []
            if p.kind == "Recurring" and p.recurrency in RECURRENCE_S:
                every = RECURRENCE_S[p.recurrency]
                base = p.start or p.valid_from or p.installed_at
                k = max(0, math.floor((start - base) / every))
                while base + k * every < end:
                    bases.append(base + k * every)
                    k += 1
            else:
                first = schedule_start(p, start, tx_start)
                if first is not None:
                    bases.append(first)
            for base in bases:
                points.update(base + q.start_s for q in p.periods)
                if p.duration_s is not None:
                    points.add(base + p.duration_s)
        return sorted(t for t in points if start <= t < end)

    def composite(
        self,
        evse_id: int,
        start: float,
        duration_s: int,
        *,
        unit: str,
        tx_start: float | None,
        hardware_w: float,
    ) -> list[Period]:
        """The limits the EVSE (0: the station) will apply from ``start`` for ``duration_s``,
        in ``unit``, merged where they do not change; the hardware's maximum where no
        profile limits it. Periods start at whole seconds (OCPP's ``startPeriod``, strictly
        increasing): of several changes within one second, the last one's limit is listed."""
        periods: list[Period] = []
        relative_start = tx_start if tx_start is not None else start
        for t in self._breakpoints(start, start + duration_s, relative_start):
            found = self.limit(evse_id, t, relative_start)
            watts = hardware_w if found is None else min(found.watts, hardware_w)
            phases = None if found is None else found.phases
            value = round(from_watts(watts, unit, phases), 1)
            offset = int(t - start)
            if periods and periods[-1].start_s == offset:
                periods.pop()
            if periods and periods[-1].limit == value and periods[-1].phases == phases:
                continue
            periods.append(Period(offset, value, phases))
        return periods
