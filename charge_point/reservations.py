"""Reservations (OCPP 1.6 ReserveNow / CancelReservation, 2.0.1 block H): an EVSE held for
one id tag (for a driver's order: the order id) until an expiry time.

The book of reservations is kept in the durable store, so a reservation survives a restart
as on a real charger. A reservation for one EVSE turns it ``Reserved`` (StatusNotification);
one without an EVSE (1.6 connector 0, 2.0.1 without ``evseId``) keeps enough EVSEs free: a
start of another id tag that would leave the reservations without a free EVSE is refused.
While reserved, an EVSE refuses an RFID tag, a remote start or a start QR of anything but
its reservation's id tag or order (reason ``reserved``, shown on the screen); the reserved one
starts normally and the transaction consumes the reservation (1.6 StartTransaction and
2.0.1 TransactionEvent carry its ``reservationId``). The reservation ends at its expiry
(2.0.1: ReservationStatusUpdate ``Expired``), when cancelled, or when its EVSE is taken out
of service (2.0.1: ``Removed``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from charge_point.evse import Event, Status
from charge_point.store import Store
from qr_extension.refusal import Reason, Refusal
from qr_extension.wire import ocpp_timestamp

if TYPE_CHECKING:
    from charge_point.station import Station

log = logging.getLogger(__name__)

STORE_KEY = "reservations"
EXPIRED, REMOVED = "Expired", "Removed"  # 2.0.1 ReservationUpdateStatusEnumType


@dataclass(frozen=True, slots=True)
class Reservation:
    """One accepted reservation; ``evse_id`` None: any EVSE of the charger."""

    id: int
    evse_id: int | None
    id_tag: str
    expires_at: float  # epoch seconds
    group_id_tag: str | None = None


class ReservationBook:
    """The charger's reservations, saved in the store on every change."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._by_id = {
            r["id"]: Reservation(**r) for r in store.get(STORE_KEY, []) if isinstance(r, dict)
        }

    def __iter__(self) -> Any:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, reservation_id: int) -> Reservation | None:
        return self._by_id.get(reservation_id)

    def for_evse(self, evse_id: int) -> Reservation | None:
        return next((r for r in self._by_id.values() if r.evse_id == evse_id), None)

    def unspecified(self) -> list[Reservation]:
        return [r for r in self._by_id.values() if r.evse_id is None]

    def put(self, reservation: Reservation) -> None:
        self._by_id[reservation.id] = reservation
        self._save()

    def pop(self, reservation_id: int) -> Reservation | None:
        gone = self._by_id.pop(reservation_id, None)
        if gone is not None:
            self._save()
        return gone

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {**asdict(r), "expires": ocpp_timestamp(r.expires_at)} for r in self._by_id.values()
        ]

    def _save(self) -> None:
        self._store.put(STORE_KEY, [asdict(r) for r in self._by_id.values()])


# --- what the station does with them ------------------------------------------------------


def reserve(station: Station, reservation: Reservation) -> str:
    """ReserveNow: ``Accepted``, ``Occupied``, ``Faulted``, ``Unavailable`` or ``Rejected``
    (an unknown EVSE, an expiry already past). A reservation id the charger holds is replaced."""
    book = station.reservations
    if reservation.expires_at <= station.now():
        return "Rejected"
    earlier = book.get(reservation.id)
    if earlier is not None and earlier.evse_id == reservation.evse_id:
        book.put(reservation)  # the same EVSE: a new expiry or token, no status change
        return "Accepted"
    if earlier is not None:
        _release(station, earlier)
    if reservation.evse_id is None:
        answer = _any_evse_answer(station)
        if answer == "Accepted":
            book.put(reservation)
        return answer
    evse_id = reservation.evse_id
    connector = station.connectors.get(evse_id)
    if connector is None:
        return "Rejected"
    if connector.status is Status.FAULTED:
        return "Faulted"
    if connector.status is Status.UNAVAILABLE or station.availability.inoperative(evse_id):
        return "Unavailable"
    if (
        connector.status is not Status.AVAILABLE
        or book.for_evse(evse_id) is not None
        or evse_id in station.sessions
        or evse_id in station.pending
    ):
        return "Occupied"
    book.put(reservation)
    station.fire(evse_id, Event.RESERVE)
    log.info(
        "%s: EVSE %d reserved for %s (id %d)",
        station.id,
        evse_id,
        reservation.id_tag,
        reservation.id,
    )
    return "Accepted"


def cancel(station: Station, reservation_id: int) -> bool:
    """CancelReservation: False (``Rejected``) for an id the charger does not hold."""
    reservation = station.reservations.get(reservation_id)
    if reservation is None:
        return False
    _release(station, reservation)
    log.info("%s: reservation %d cancelled", station.id, reservation_id)
    return True


def refusal(station: Station, evse_id: int, id_tag: str) -> Refusal | None:
    """Why ``id_tag`` may not start on ``evse_id`` because of a reservation, if it may not."""
    held = station.reservations.for_evse(evse_id)
    if held is not None and not _holder(held, id_tag):
        until = ocpp_timestamp(held.expires_at)
        return Refusal(Reason.RESERVED, f"EVSE {evse_id} is reserved until {until}")
    if held is not None:
        return None
    others = [r for r in station.reservations.unspecified() if not _holder(r, id_tag)]
    if others and len(_free_evses(station, besides=evse_id)) < len(others):
        return Refusal(Reason.RESERVED, "the free EVSEs of this charger are reserved")
    return None


def reserved_for(station: Station) -> dict[int, str]:
    """Each reserved EVSE and the id tag (order id) it is held for."""
    return {r.evse_id: r.id_tag for r in station.reservations if r.evse_id is not None}


def evse_of(station: Station, id_tag: str) -> int | None:
    """The EVSE reserved for ``id_tag``, if one is."""
    return next((r.evse_id for r in station.reservations if r.evse_id and _holder(r, id_tag)), None)


def consume(station: Station, evse_id: int, id_tag: str) -> int | None:
    """A transaction of ``id_tag`` starts on ``evse_id``: the reservation it uses (ended now,
    without a status change: the EVSE goes on to Preparing / Charging), or None."""
    held = station.reservations.for_evse(evse_id)
    if held is None or not _holder(held, id_tag):
        held = next((r for r in station.reservations.unspecified() if _holder(r, id_tag)), None)
    if held is None:
        return None
    station.reservations.pop(held.id)
    log.info("%s: reservation %d used on EVSE %d", station.id, held.id, evse_id)
    return held.id


def expire(station: Station, now: float) -> None:
    """Ends every reservation whose expiry has passed (2.0.1: ReservationStatusUpdate)."""
    for reservation in station.reservations:
        if reservation.expires_at <= now:
            log.info("%s: reservation %d expired", station.id, reservation.id)
            _release(station, reservation, tell=EXPIRED)


def remove_for(station: Station, evse_id: int) -> None:
    """The EVSE goes out of service: its reservation is removed (2.0.1: ``Removed``)."""
    held = station.reservations.for_evse(evse_id)
    if held is not None:
        station.reservations.pop(held.id)
        station.listener.reservation_ended(held.id, REMOVED)


def _release(station: Station, reservation: Reservation, *, tell: str | None = None) -> None:
    station.reservations.pop(reservation.id)
    evse_id = reservation.evse_id
    if evse_id is not None and station.connectors[evse_id].status is Status.RESERVED:
        station.fire(evse_id, Event.UNRESERVE)
        station.settle(evse_id)  # an EV parked there: Preparing
    if tell is not None:
        station.listener.reservation_ended(reservation.id, tell)


def _holder(reservation: Reservation, id_tag: str) -> bool:
    return id_tag in (reservation.id_tag, reservation.group_id_tag)


def _free_evses(station: Station, *, besides: int | None = None) -> list[int]:
    """EVSEs where a reservation without an EVSE could still start: Available or waiting with
    an EV, no session, no pending start, not reserved."""
    held = set(reserved_for(station))
    return [
        i
        for i, c in station.connectors.items()
        if i != besides
        and c.status in (Status.AVAILABLE, Status.PREPARING)
        and i not in station.sessions
        and i not in station.pending
        and i not in held
    ]


def _any_evse_answer(station: Station) -> str:
    if len(_free_evses(station)) > len(station.reservations.unspecified()):
        return "Accepted"
    statuses = {c.status for c in station.connectors.values()}
    if statuses == {Status.FAULTED}:
        return "Faulted"
    if statuses <= {Status.UNAVAILABLE, Status.FAULTED}:
        return "Unavailable"
    return "Occupied"
