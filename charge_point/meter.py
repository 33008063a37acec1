"""The EV and the energy meter of one EVSE: a pure model advanced by ``step(dt)``.

The EV draws power up a linear ramp to the EVSE's maximum, tapers linearly to zero between
``taper_soc`` and a full battery, and stops drawing when full. The meter register counts
whole Wh delivered over the EVSE's lifetime (it never goes back, also across restarts: the
station persists it). No I/O and no clock here: the station passes the elapsed real ``dt``.

``power_scale`` X (the charger's ``--time-scale``) makes the EV and the EVSE X times as
strong: the charge curve (ramp, taper, full battery) is run X times as fast, so the energy
of an hour arrives in 1/X hour and the power drawn, and reported, is X times the model's.
Energy over time and reported power stay consistent; time itself is never scaled.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CAPACITY_WH = 60_000
DEFAULT_SOC = 0.2
RAMP_S = 10.0  # seconds from 0 to full power
TAPER_SOC = 0.8  # above this state of charge the power falls linearly towards 0 at 100 %
MIN_TAPER_FRACTION = 0.05  # ... but not below 5 % of the maximum, so the battery gets full


@dataclass
class Ev:
    """A plugged-in electric vehicle: battery size and stored energy."""

    capacity_wh: int = DEFAULT_CAPACITY_WH
    stored_wh: float = DEFAULT_CAPACITY_WH * DEFAULT_SOC

    @classmethod
    def with_soc(cls, capacity_wh: int, soc: float) -> Ev:
        if capacity_wh <= 0 or not 0.0 <= soc <= 1.0:
            raise ValueError("capacity must be positive and soc within [0, 1]")
        return cls(capacity_wh=capacity_wh, stored_wh=capacity_wh * soc)

    @property
    def soc(self) -> float:
        return self.stored_wh / self.capacity_wh

    @property
    def full(self) -> bool:
        return self.stored_wh >= self.capacity_wh - 1e-6

    def acceptance_w(self, max_power_w: float) -> float:
        """The power the EV accepts now (the taper of a real battery)."""
        if self.full:
            return 0.0
        if self.soc <= TAPER_SOC:
            return max_power_w
        taper = max_power_w * (1.0 - self.soc) / (1.0 - TAPER_SOC)
        return max(max_power_w * MIN_TAPER_FRACTION, taper)  # the last Wh do arrive


class Meter:
    """Power and energy register of one EVSE, with the EV plugged into it (if any)."""

    def __init__(
        self, max_power_w: float, register_wh: int = 0, *, power_scale: float = 1.0
    ) -> None:
        if power_scale <= 0:
            raise ValueError("power_scale must be positive")
        self.max_power_w = max_power_w  # of the model, before power_scale
        self.power_scale = power_scale
        self.ev: Ev | None = None
        self.power_w = 0.0  # drawn now: the model's power x power_scale
        self._exact_wh = float(register_wh)
        self._ramp = 0.0  # 0..1, fraction of the ramp reached

    @property
    def register_wh(self) -> int:
        """The energy register in whole Wh (what MeterValues report)."""
        return int(self._exact_wh)

    @property
    def ev_wants_power(self) -> bool:
        return self.ev is not None and not self.ev.full

    def restore_register(self, wh: int) -> None:
        """After a restart: the register never goes below the last durable reading."""
        self._exact_wh = max(self._exact_wh, float(wh))

    def plug(self, ev: Ev) -> None:
        self.ev = ev
        self._ramp = 0.0

    def unplug(self) -> None:
        self.ev = None
        self.power_w = 0.0
        self._ramp = 0.0

    def step(
        self,
        dt: float,
        *,
        offering: bool,
        max_wh: float | None = None,
        limit_w: float | None = None,
    ) -> int:
        """Advances ``dt`` real seconds; returns the whole Wh the register gained.

        ``offering`` is whether the EVSE offers power (a running, unsuspended transaction);
        ``max_wh`` caps the energy of this step (the energy limit of the order is never
        exceeded by a coarse step); ``limit_w`` caps the power drawn, as reported (the active
        charging profile: :mod:`charge_point.smart_charging`).
        """
        if dt <= 0:
            return 0
        if not offering or self.ev is None:
            self.power_w = 0.0
            self._ramp = 0.0
            return 0
        model_dt = dt * self.power_scale  # the charge curve runs power_scale times as fast
        self._ramp = min(1.0, self._ramp + model_dt / RAMP_S)
        model_w = min(self.max_power_w * self._ramp, self.ev.acceptance_w(self.max_power_w))
        if limit_w is not None:
            model_w = min(model_w, max(0.0, limit_w) / self.power_scale)
        self.power_w = model_w * self.power_scale
        energy = model_w * model_dt / 3600.0
        energy = min(energy, self.ev.capacity_wh - self.ev.stored_wh)
        if max_wh is not None:
            energy = min(energy, max(0.0, max_wh))
        before = self.register_wh
        self.ev.stored_wh += energy
        self._exact_wh += energy
        if self.ev.full:
            self.power_w = 0.0
        return self.register_wh - before
