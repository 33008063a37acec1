"""ChangeAvailability: which EVSEs (or the whole charger) the CSMS took out of service.

What the CSMS asked for is kept in the durable store, so an EVSE taken out of service stays
``Unavailable`` after a restart, as OCPP asks of a charger (both versions keep an
availability change across a reboot). The station and each EVSE have their own setting: an
EVSE is out of service when either is, so making the station operative again leaves an EVSE
that was taken out on its own out of service.

A change that cannot be made now because a transaction runs on the EVSE is answered
``Scheduled`` and made when the transaction ends (Charging -> Finishing -> Unavailable). An EVSE
going out of service loses its reservation and any start waiting for its EV.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from charge_point import reservations
from charge_point.evse import Event, Status
from charge_point.store import Store

if TYPE_CHECKING:
    from charge_point.station import Station

log = logging.getLogger(__name__)

STORE_KEY = "availability"


class Availability:
    """The out-of-service settings, saved in the store on every change."""

    def __init__(self, store: Store) -> None:
        self._store = store
        saved = store.get(STORE_KEY) or {}
        self.station_inoperative = bool(saved.get("station", False))
        self.evses_inoperative = {int(i) for i in saved.get("evses", [])}

    def inoperative(self, evse_id: int) -> bool:
        return self.station_inoperative or evse_id in self.evses_inoperative

    def want(self, evse_id: int | None, operative: bool) -> None:
        """Records the CSMS's wish for one EVSE, or (``evse_id`` None) for the station."""
        if evse_id is None:
            self.station_inoperative = not operative
        elif operative:
            self.evses_inoperative.discard(evse_id)
        else:
            self.evses_inoperative.add(evse_id)
        self._store.put(
            STORE_KEY,
            {"station": self.station_inoperative, "evses": sorted(self.evses_inoperative)},
        )


def change(station: Station, evse_id: int | None, operative: bool) -> str:
    """ChangeAvailability for one EVSE or (``evse_id`` None: 1.6 connector 0, 2.0.1 without
    ``evse``) the whole charger: ``Accepted``, ``Scheduled`` (a transaction runs: made when
    it ends) or ``Rejected`` (no such EVSE)."""
    if evse_id is not None and evse_id not in station.connectors:
        return "Rejected"
    station.availability.want(evse_id, operative)
    ids = [evse_id] if evse_id is not None else list(station.connectors)
    waiting = [i for i in ids if not apply(station, i)]
    log.info(
        "%s: %s %s%s",
        station.id,
        "station" if evse_id is None else f"EVSE {evse_id}",
        "operative" if operative else "inoperative",
        f" (scheduled for EVSE {waiting})" if waiting else "",
    )
    return "Scheduled" if waiting else "Accepted"


def apply(station: Station, evse_id: int) -> bool:
    """Brings the EVSE's status in line with its setting; False while a transaction runs on
    it (the station applies it again when the transaction ends)."""
    connector = station.connectors[evse_id]
    if not station.availability.inoperative(evse_id):
        if connector.status is Status.UNAVAILABLE:
            station.fire(evse_id, Event.ENABLE)
            station.settle(evse_id)
        return True
    if evse_id in station.sessions:
        return False
    if connector.status in (Status.UNAVAILABLE, Status.FAULTED):
        return True  # a faulted EVSE goes Unavailable when the fault clears
    reservations.remove_for(station, evse_id)
    station.drop_pending(evse_id)
    station.fire(evse_id, Event.DISABLE)
    return True


def initial_status(availability: Availability, evse_id: int) -> Status:
    """The status an EVSE starts in after a restart."""
    return Status.UNAVAILABLE if availability.inoperative(evse_id) else Status.AVAILABLE
