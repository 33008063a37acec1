"""Meter values block: sampled values of both versions, stored in time order.

Values arrive late (queued offline) and out of order; rows carry the sample's own timestamp
and every reader orders by it, so arrival order never matters. They also arrive twice: a
charger that got no answer (the connection dropped, the answer was lost) sends the same
MeterValues again, and nothing in OCPP marks it as a repeat. A reading of a transaction (its
instant, measurand, phase, unit, context, location and value) is therefore stored once; the
same reading again adds nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csms.context import CsmsContext
from csms.store import meter_values as stored_values
from csms.store.writer import Batch
from qr_extension.wire import parse_ocpp_timestamp

ENERGY_REGISTER = "Energy.Active.Import.Register"
REGISTER_MAX_WH = 2**53  # exact as a float; the transactions' register columns are 64-bit


@dataclass(frozen=True, slots=True)
class Sample:
    timestamp: datetime
    value: float
    measurand: str = ENERGY_REGISTER
    phase: str | None = None
    unit: str | None = None
    context: str | None = None
    location: str | None = None

    @property
    def energy_wh(self) -> int | None:
        """The energy register in Wh; None for any other measurand, and for a register
        beyond what the transaction's columns hold (kept as a sample, not as a register)."""
        if self.measurand != ENERGY_REGISTER or self.phase is not None:
            return None
        scale = 1000 if (self.unit or "Wh") == "kWh" else 1
        wh = self.value * scale
        if not -REGISTER_MAX_WH <= wh <= REGISTER_MAX_WH:  # also false for inf and NaN
            return None
        return round(wh)


def samples_from_ocpp(meter_value: Iterable[Mapping[str, Any]]) -> list[Sample]:
    """Reads the snake_cased ``meter_value`` list of either version; bad entries are skipped,
    among them a value that is not a finite number once scaled (``"1e400"``, ``"nan"``, a
    multiplier of 400)."""
    samples = []
    for group in meter_value:
        try:
            at = parse_ocpp_timestamp(str(group["timestamp"]))
        except (KeyError, ValueError):
            continue
        for sv in group.get("sampled_value", ()):
            unit = sv.get("unit")
            scale = 1.0
            uom = sv.get("unit_of_measure")
            if isinstance(uom, Mapping):  # 2.0.1: unit and power-of-ten multiplier
                unit = uom.get("unit", "Wh")
                try:
                    scale = 10.0 ** int(uom.get("multiplier", 0))
                except (TypeError, ValueError, OverflowError):
                    continue
            try:
                value = float(sv["value"]) * scale
            except (KeyError, TypeError, ValueError, OverflowError):
                continue
            if not math.isfinite(value):
                continue
            samples.append(
                Sample(
                    timestamp=at,
                    value=value,
                    measurand=sv.get("measurand") or ENERGY_REGISTER,
                    phase=sv.get("phase"),
                    unit=unit,
                    context=sv.get("context"),
                    location=sv.get("location"),
                )
            )
    return samples


def register_at(samples: Sequence[Sample], *, last: bool, context: str | None = None) -> int | None:
    """The first (or last) energy register reading, preferring samples of ``context``."""
    energy = [s for s in samples if s.energy_wh is not None]
    preferred = [s for s in energy if s.context == context] if context else []
    pool = sorted(preferred or energy, key=lambda s: s.timestamp)
    if not pool:
        return None
    return pool[-1 if last else 0].energy_wh


def sample_rows(
    charger_id: str, transaction_pk: int | None, evse_id: int | None, samples: Iterable[Sample]
) -> list[dict[str, Any]]:
    """``meter_values`` rows for a Core ``executemany`` (the hot path: no ORM objects)."""
    return [
        {
            "charger_id": charger_id,
            "transaction_pk": transaction_pk,
            "evse_id": evse_id,
            "timestamp": s.timestamp,
            "measurand": s.measurand[:60],
            "phase": s.phase,
            "unit": s.unit,
            "context": s.context,
            "location": s.location,
            "value": s.value,
        }
        for s in samples
    ]


async def meter_values(
    ctx: CsmsContext,
    charger_id: str,
    *,
    evse_id: int,
    transaction_id: str | None,
    samples: Sequence[Sample],
) -> None:
    """MeterValues of either version: attached to the named (1.6) or open (2.0.1) transaction.

    Stored through the store writer (group commit, one insert per group); answered after the
    commit, see docs/decisions.md.
    """
    if not samples:
        return

    rows = sample_rows(charger_id, None, evse_id or None, samples)

    def op(batch: Batch) -> None:
        stored_values.add_readings(
            batch, charger_id=charger_id, transaction_id=transaction_id, evse_id=evse_id, rows=rows
        )

    await ctx.writer.execute(op, charger_id)
