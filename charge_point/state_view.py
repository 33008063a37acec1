"""A read-only view of a station for ``GET /state`` (and for tests and integrators)."""

from __future__ import annotations

from typing import Any

from charge_point.meter import Meter
from charge_point.station import Station


def _soc(meter: Meter) -> float | None:
    return None if meter.ev is None else meter.ev.soc


def snapshot(station: Station) -> dict[str, Any]:
    """The state for ``GET /state``: connection, EVSEs, running transactions, queue."""
    return {
        "id": station.id,
        "now": station.now(),
        "online": station.online,
        "clock_synced": station.clock_synced,
        "time_floor": station.floor,
        "trusted_kids": [k.kid for k in station.trusted],
        "settlement_kid": station.key.kid,
        "queue_length": station.store.queue_len(),
        "reservations": station.reservations.snapshot(),
        "inoperative": {
            "station": station.availability.station_inoperative,
            "evses": sorted(station.availability.evses_inoperative),
        },
        "evses": [
            {
                "id": i,
                "status": c.status.value,
                "plugged": station.meters[i].ev is not None,
                "soc": _soc(station.meters[i]),
                "power_w": station.meters[i].power_w,
                "register_wh": station.meters[i].register_wh,
            }
            for i, c in station.connectors.items()
        ],
        "transactions": [
            {
                "transaction_id": s.local_id,
                "csms_transaction_id": station.store.csms_id(s.local_id),
                "evse_id": s.evse_id,
                "id_tag": s.id_tag,
                "order_id": s.auth.order_id if s.auth else None,
                "started_at": s.started_at,
                "energy_wh": s.energy_wh,
                "offline": s.offline,
                "limit": None if s.limit is None else s.limit.value,
                "cost": None if s.cost() is None else s.cost().total,  # type: ignore[union-attr]
                "status": station.connectors[s.evse_id].status.value,
            }
            for s in station.sessions.values()
        ],
    }
