"""The connector status of one EVSE: a transition table ``{status: {event: next_status}}``.

The statuses are those of OCPP 1.6 ``ChargePointStatus``; the 2.0.1 adapter maps them onto the
coarser 2.0.1 connector statuses with :func:`status_201`. Every status change is reported with
a StatusNotification, so the table is also the list of notifications a charger can send.

An event that the table has no entry for raises :class:`IllegalTransition`, naming the status
and the event: the station checks what it may do first, so an illegal transition is a bug, or
a CSMS command that is answered ``Rejected``.
"""

from __future__ import annotations

from enum import StrEnum

from charge_point.errors import IllegalTransition


class Status(StrEnum):
    """Connector status (OCPP 1.6 names)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"  # EV plugged or user authorised, no energy yet
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"  # the EV draws no power (full, or paused)
    SUSPENDED_EVSE = "SuspendedEVSE"  # the charger offers no power (a limit was reached)
    FINISHING = "Finishing"  # transaction ended, EV still plugged
    RESERVED = "Reserved"  # held for one id tag or order (ReserveNow)
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class Event(StrEnum):
    """What can happen to a connector."""

    PLUG = "plug"  # EV cable connected
    UNPLUG = "unplug"  # EV cable removed
    AUTHORIZE = "authorize"  # a user was authorised before plugging in (remote start)
    CANCEL = "cancel"  # the authorisation lapsed before the EV was plugged in
    START = "start"  # a transaction started with the EV plugged: offer power
    EV_IDLE = "ev_idle"  # the EV stopped drawing power (full)
    EV_DRAW = "ev_draw"  # the EV draws power again
    SUSPEND = "suspend"  # a limit was reached: the charger stops offering power
    STOP = "stop"  # the transaction ended while the EV is still plugged
    FAULT = "fault"
    CLEAR = "clear"  # the fault is gone
    DISABLE = "disable"  # ChangeAvailability Inoperative
    ENABLE = "enable"  # ChangeAvailability Operative
    RESERVE = "reserve"  # ReserveNow accepted for this EVSE
    UNRESERVE = "unreserve"  # the reservation was cancelled, expired or removed


S, E = Status, Event
_ANY_FAULT = {E.FAULT: S.FAULTED}

TRANSITIONS: dict[Status, dict[Event, Status]] = {
    S.AVAILABLE: {
        E.PLUG: S.PREPARING,
        E.AUTHORIZE: S.PREPARING,
        E.DISABLE: S.UNAVAILABLE,
        E.RESERVE: S.RESERVED,
        **_ANY_FAULT,
    },
    # an EV parked at a reserved EVSE changes nothing until the reserved id tag or order
    # is presented (then Preparing)
    S.RESERVED: {
        E.PLUG: S.RESERVED,
        E.AUTHORIZE: S.PREPARING,
        E.UNRESERVE: S.AVAILABLE,
        E.DISABLE: S.UNAVAILABLE,
        **_ANY_FAULT,
    },
    S.PREPARING: {
        E.PLUG: S.PREPARING,
        E.UNPLUG: S.AVAILABLE,
        E.CANCEL: S.AVAILABLE,
        E.START: S.CHARGING,
        E.EV_IDLE: S.SUSPENDED_EV,
        E.DISABLE: S.UNAVAILABLE,
        **_ANY_FAULT,
    },
    S.CHARGING: {
        E.EV_IDLE: S.SUSPENDED_EV,
        E.SUSPEND: S.SUSPENDED_EVSE,
        E.STOP: S.FINISHING,
        E.UNPLUG: S.AVAILABLE,
        **_ANY_FAULT,
    },
    S.SUSPENDED_EV: {
        E.EV_DRAW: S.CHARGING,
        E.SUSPEND: S.SUSPENDED_EVSE,
        E.STOP: S.FINISHING,
        E.UNPLUG: S.AVAILABLE,
        **_ANY_FAULT,
    },
    S.SUSPENDED_EVSE: {E.STOP: S.FINISHING, E.UNPLUG: S.AVAILABLE, **_ANY_FAULT},
    S.FINISHING: {E.UNPLUG: S.AVAILABLE, E.DISABLE: S.UNAVAILABLE, **_ANY_FAULT},
    # an EV may be plugged into an EVSE that is out of service: nothing starts
    S.UNAVAILABLE: {E.ENABLE: S.AVAILABLE, E.PLUG: S.UNAVAILABLE, **_ANY_FAULT},
    S.FAULTED: {E.CLEAR: S.AVAILABLE},
}


def next_status(status: Status, event: Event) -> Status:
    """The status after ``event``; raises :class:`IllegalTransition` if not allowed."""
    try:
        return TRANSITIONS[status][event]
    except KeyError:
        raise IllegalTransition(status.value, event.value) from None


def allows(status: Status, event: Event) -> bool:
    return event in TRANSITIONS[status]


def status_201(status: Status) -> str:
    """The OCPP 2.0.1 ``ConnectorStatusEnumType`` value of a 1.6 status."""
    if status in (S.AVAILABLE, S.UNAVAILABLE, S.FAULTED, S.RESERVED):
        return status.value
    return "Occupied"


def charging_state_201(status: Status) -> str:
    """The OCPP 2.0.1 ``ChargingStateEnumType`` value reported in TransactionEvents."""
    return {
        S.CHARGING: "Charging",
        S.SUSPENDED_EV: "SuspendedEV",
        S.SUSPENDED_EVSE: "SuspendedEVSE",
        S.PREPARING: "EVConnected",
        S.FINISHING: "EVConnected",
    }.get(status, "Idle")


class Connector:
    """The status of one EVSE's connector; ``fire`` is the only way to change it."""

    def __init__(self, evse_id: int, status: Status = Status.AVAILABLE) -> None:
        self.evse_id = evse_id
        self.status = status

    def fire(self, event: Event) -> Status:
        self.status = next_status(self.status, event)
        return self.status

    def can(self, event: Event) -> bool:
        return allows(self.status, event)
