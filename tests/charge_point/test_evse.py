"""The connector status table."""

from __future__ import annotations

import pytest

from charge_point.errors import IllegalTransition
from charge_point.evse import TRANSITIONS, Connector, Event, Status, next_status, status_201


def test_a_normal_session_walks_the_table() -> None:
    c = Connector(1)
    steps = [
        Event.PLUG,
        Event.START,
        Event.EV_IDLE,
        Event.EV_DRAW,
        Event.SUSPEND,
        Event.STOP,
        Event.UNPLUG,
    ]
    seen = [c.fire(e) for e in steps]
    assert seen == [
        Status.PREPARING,
        Status.CHARGING,
        Status.SUSPENDED_EV,
        Status.CHARGING,
        Status.SUSPENDED_EVSE,
        Status.FINISHING,
        Status.AVAILABLE,
    ]


def test_illegal_transition_names_status_and_event() -> None:
    with pytest.raises(IllegalTransition) as info:
        next_status(Status.AVAILABLE, Event.START)
    assert info.value.status == "Available" and info.value.event == "start"
    assert "Available" in str(info.value) and "start" in str(info.value)


def test_a_limit_cannot_be_lifted_by_the_ev() -> None:
    assert Event.EV_DRAW not in TRANSITIONS[Status.SUSPENDED_EVSE]


def test_every_status_can_fault_except_faulted_and_every_target_is_a_status() -> None:
    for status, row in TRANSITIONS.items():
        assert (Event.FAULT in row) == (status is not Status.FAULTED)
        assert all(isinstance(t, Status) for t in row.values())
    assert set(TRANSITIONS) == set(Status)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status.AVAILABLE, "Available"),
        (Status.PREPARING, "Occupied"),
        (Status.CHARGING, "Occupied"),
        (Status.SUSPENDED_EVSE, "Occupied"),
        (Status.FINISHING, "Occupied"),
        (Status.UNAVAILABLE, "Unavailable"),
        (Status.FAULTED, "Faulted"),
        (Status.RESERVED, "Reserved"),
    ],
)
def test_201_connector_status(status: Status, expected: str) -> None:
    assert status_201(status) == expected


def test_the_table_in_the_docs_is_the_table_in_the_code() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "charge-point.md").read_text()
    lines = [line for line in doc.splitlines() if line.startswith("| status \\ event")]
    (header,) = lines
    events = [cell.strip() for cell in header.strip("|").split("|")[1:]]
    start = doc.splitlines().index(header) + 2
    documented: dict[Status, dict[Event, Status]] = {}
    for line in doc.splitlines()[start : start + len(Status)]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        documented[Status(cells[0])] = {
            Event(e): Status(target) for e, target in zip(events, cells[1:], strict=True) if target
        }
    assert documented == TRANSITIONS
