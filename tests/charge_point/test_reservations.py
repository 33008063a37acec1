"""The reference charger's reservations and availability, on a manual clock: statuses in the
order a real charger reports them, refusals with the ``reserved`` reason, expiry, and what is
kept across a restart."""

from __future__ import annotations

from collections.abc import Callable

from charge_point.clock import ManualClock
from charge_point.events import Kind
from charge_point.evse import Status
from charge_point.reservations import Reservation, cancel, reserve
from charge_point.station import Station
from qr_extension.refusal import Reason, Refusal
from tests.charge_point.conftest import TokenFactory

MakeStation = Callable[..., Station]


class Heard:
    """A listener that keeps what the station told the link."""

    def __init__(self) -> None:
        self.statuses: list[tuple[int, str]] = []
        self.ended: list[tuple[int, str]] = []

    def status_changed(self, evse_id: int, status: Status) -> None:
        self.statuses.append((evse_id, status.value))

    def queued(self) -> None:
        pass

    def reservation_ended(self, reservation_id: int, status: str) -> None:
        self.ended.append((reservation_id, status))


def _station(make_station: MakeStation, clock: ManualClock) -> tuple[Station, Heard]:
    station = make_station(clock=clock)
    heard = Heard()
    station.listener = heard
    return station, heard


def _started(station: Station) -> list[dict[str, object]]:
    return [m.payload for m in station.store.queue_items() if m.kind == Kind.STARTED]


def test_reserved_evse_refuses_other_orders_and_starts_its_own(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station, heard = _station(make_station, clock)
    until = clock.now() + 600
    assert reserve(station, Reservation(7, 1, "MINE", until)) == "Accepted"
    station.plug(1)  # the EV parks at the reserved EVSE: still Reserved
    refused = station.scan(token("THEIRS", clock.now(), evse=1))
    assert isinstance(refused, Refusal) and refused.reason is Reason.RESERVED
    assert station.display.reasons[-1].reason == "reserved"
    # a token without an EVSE picks the one waiting EVSE, which is reserved: refused too
    refused = station.scan(token("THEIRS2", clock.now(), evse=None))
    assert isinstance(refused, Refusal) and refused.reason is Reason.RESERVED
    assert not station.authorize_tag(1, "CARD", "ISO14443")
    assert not station.remote_start("OTHER", 1, 3)
    assert station.connectors[1].status is Status.RESERVED

    started = station.scan(token("MINE", clock.now(), evse=1))
    assert not isinstance(started, Refusal)
    assert heard.statuses == [(1, "Reserved"), (1, "Preparing"), (1, "Charging")]
    assert len(station.reservations) == 0 and heard.ended == []  # used, not ended
    (row,) = _started(station)
    assert row["reservation_id"] == 7 and row["id_tag"] == "MINE"


def test_remote_start_without_evse_goes_to_the_reserved_one(make_station: MakeStation) -> None:
    clock = ManualClock()
    station, _ = _station(make_station, clock)
    assert reserve(station, Reservation(1, 2, "CARD", clock.now() + 600)) == "Accepted"
    assert station.remote_start("CARD", None, 5)
    assert station.connectors[2].status is Status.PREPARING
    # no EV within ConnectionTimeOut: the authorisation lapses, the EVSE is Reserved again
    clock.advance(station.config["ConnectionTimeOut"] + 1)
    station.tick()
    assert station.connectors[2].status is Status.RESERVED
    assert station.remote_start("CARD", None, 5)
    station.plug(2)
    assert station.connectors[2].status is Status.CHARGING
    assert _started(station)[0]["reservation_id"] == 1


def test_answers_expiry_cancel_and_replacement(make_station: MakeStation) -> None:
    clock = ManualClock()
    station, heard = _station(make_station, clock)
    now = clock.now()
    assert reserve(station, Reservation(1, 9, "A", now + 60)) == "Rejected"  # no EVSE 9
    assert reserve(station, Reservation(1, 1, "A", now - 1)) == "Rejected"  # already expired
    assert reserve(station, Reservation(1, 1, "A", now + 60)) == "Accepted"
    assert reserve(station, Reservation(2, 1, "B", now + 60)) == "Occupied"
    assert reserve(station, Reservation(1, 1, "A", now + 120)) == "Accepted"  # a new expiry
    station.fault(2)
    assert reserve(station, Reservation(3, 2, "C", now + 60)) == "Faulted"
    station.clear_fault(2)
    assert station.change_availability(2, operative=False) == "Accepted"
    assert reserve(station, Reservation(3, 2, "C", now + 60)) == "Unavailable"
    assert station.change_availability(2, operative=True) == "Accepted"
    assert reserve(station, Reservation(1, 2, "A", now + 60)) == "Accepted"  # moved to EVSE 2
    assert station.connectors[1].status is Status.AVAILABLE
    assert station.connectors[2].status is Status.RESERVED
    assert cancel(station, 1) and not cancel(station, 1)
    assert station.connectors[2].status is Status.AVAILABLE

    assert reserve(station, Reservation(4, 1, "D", now + 30)) == "Accepted"
    clock.advance(29)
    station.tick()
    assert station.connectors[1].status is Status.RESERVED
    clock.advance(1)
    station.tick()
    assert station.connectors[1].status is Status.AVAILABLE
    assert heard.ended == [(4, "Expired")]


def test_a_reservation_for_any_evse_keeps_one_free(make_station: MakeStation) -> None:
    clock = ManualClock()
    station, _ = _station(make_station, clock)
    assert reserve(station, Reservation(5, None, "ANY", clock.now() + 600)) == "Accepted"
    assert station.connectors[1].status is Status.AVAILABLE  # no EVSE is Reserved
    assert station.remote_start("FIRST", 1, 1)  # EVSE 2 is still free for it
    refused = station.remote_start("SECOND", 2, 2)
    assert not refused and station.display.reasons[-1].reason == "reserved"
    assert reserve(station, Reservation(6, None, "MORE", clock.now() + 600)) == "Occupied"
    assert station.remote_start("ANY", 2, 3)
    station.plug(2)
    assert _started(station)[0]["reservation_id"] == 5 and len(station.reservations) == 0


def test_out_of_service_removes_the_reservation_and_waits_for_the_session(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station, heard = _station(make_station, clock)
    assert reserve(station, Reservation(8, 2, "R", clock.now() + 600)) == "Accepted"
    station.plug(1)
    assert not isinstance(station.scan(token("ORDER1", clock.now(), evse=1)), Refusal)
    heard.statuses.clear()
    assert station.change_availability(None, operative=False) == "Scheduled"
    assert heard.ended == [(8, "Removed")] and len(station.reservations) == 0
    assert heard.statuses == [(2, "Unavailable")]  # EVSE 1 charges on
    assert station.press_stop(1)
    assert heard.statuses[1:] == [(1, "Finishing"), (1, "Unavailable")]
    station.unplug(1)
    assert station.connectors[1].status is Status.UNAVAILABLE
    station.plug(1)  # an EV at an EVSE out of service: nothing starts
    assert isinstance(station.scan(token("ORDER2", clock.now(), evse=1)), Refusal)
    assert station.change_availability(None, operative=True) == "Accepted"
    assert station.connectors[1].status is Status.PREPARING
    assert station.connectors[2].status is Status.AVAILABLE


def test_reservations_and_availability_are_kept_across_a_restart(
    make_station: MakeStation,
) -> None:
    clock = ManualClock()
    station, _ = _station(make_station, clock)
    assert reserve(station, Reservation(3, 1, "KEPT", clock.now() + 600)) == "Accepted"
    assert station.change_availability(2, operative=False) == "Accepted"
    station.store.close()
    again = make_station(clock=clock)
    assert again.connectors[1].status is Status.RESERVED
    assert again.connectors[2].status is Status.UNAVAILABLE
    assert again.reservations.get(3) == Reservation(3, 1, "KEPT", clock.now() + 600)
    clock.advance(601)
    again.tick()  # expired while it was off: ended at the first tick
    assert again.connectors[1].status is Status.AVAILABLE
