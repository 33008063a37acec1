"""The CSMS's transaction transition table: every legal step, typed errors for illegal ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from csms.errors import CsmsError, IllegalTransition
from csms.protocol.transaction_lifecycle import (
    TRANSITIONS,
    TxnEvent,
    TxnState,
    next_state,
)

S, E = TxnState, TxnEvent
LEGAL = [
    # a 1.6 transaction, and the same messages again
    (S.UNSEEN, E.START, S.STARTED),
    (S.STARTED, E.REPEAT, S.STARTED),
    (S.STARTED, E.STOP, S.ENDED),
    (S.ENDED, E.REPEAT, S.ENDED),
    # a 1.6 stop of a transaction the CSMS never assigned: stored as ended (flagged)
    (S.UNSEEN, E.STOP, S.ENDED),
    # 2.0.1, in order
    (S.UNSEEN, E.STARTED, S.STARTED),
    (S.STARTED, E.UPDATED, S.STARTED),
    (S.STARTED, E.ENDED, S.ENDED),
    # a different event under a used seqNo, or a second Started: applied
    (S.STARTED, E.STARTED, S.STARTED),
    # queued offline, out of order: nothing reopens an ended transaction
    (S.UNSEEN, E.UPDATED, S.STARTED),
    (S.UNSEEN, E.ENDED, S.ENDED),
    (S.ENDED, E.STARTED, S.ENDED),
    (S.ENDED, E.UPDATED, S.ENDED),
    (S.ENDED, E.ENDED, S.ENDED),
]
ILLEGAL = [
    (S.UNSEEN, E.REPEAT),  # nothing stored, nothing to repeat
    (S.STARTED, E.START),  # a 1.6 start is a new transaction, or the same start again
    (S.ENDED, E.START),
    (S.ENDED, E.STOP),  # a 1.6 stop of an ended transaction is a repeat: the first stop stays
]


@pytest.mark.parametrize(("state", "event", "after"), LEGAL)
def test_every_legal_step(state: TxnState, event: TxnEvent, after: TxnState) -> None:
    assert next_state(state, event) is after
    assert next_state(state.value, event.value) is after  # as stored, as received


def test_the_steps_listed_here_are_the_whole_table() -> None:
    table = {(s, e): after for s, steps in TRANSITIONS.items() for e, after in steps.items()}
    assert table == {(s, e): after for s, e, after in LEGAL}
    assert set(table) | set(ILLEGAL) == {(s, e) for s in TxnState for e in TxnEvent}


def test_a_2_0_1_event_type_is_its_event() -> None:
    assert [next_state("Started", t) for t in ("Started", "Updated", "Ended")] == [
        S.STARTED, S.STARTED, S.ENDED,
    ]  # fmt: skip


@pytest.mark.parametrize(("state", "event"), [*ILLEGAL, ("Open", E.STOP), (S.STARTED, "Paused")])
def test_illegal_steps_name_the_machine_state_and_event(state: str, event: str) -> None:
    with pytest.raises(IllegalTransition) as raised:
        next_state(state, event)
    error = raised.value
    assert isinstance(error, CsmsError)
    assert (error.machine, error.state, error.event) == ("transaction", state, event)
    assert str(error) == f"transaction in state {str(state)!r} cannot take event {str(event)!r}"


def test_the_table_drawn_in_the_architecture_doc_is_the_table() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "architecture.md").read_text()
    section = doc.split("### Idempotent transactions", 1)[1].split("\n### ", 1)[0]
    rows = [
        _first_names(line)
        for line in section.splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]
    events = [TxnEvent(str(name)) for name in rows[0][1:]]
    drawn = {
        (TxnState(str(row[0])), event): TxnState(cell)
        for row in rows[1:]
        for event, cell in zip(events, row[1:], strict=True)
        if cell is not None
    }
    table = {(s, e): after for s, steps in TRANSITIONS.items() for e, after in steps.items()}
    assert drawn == table


def _first_names(line: str) -> list[str | None]:
    """The first `name` of each cell of a markdown table row; None for a cell without one."""
    cells = line.strip("|").split("|")
    return [m.group(1) if (m := re.match(r"\s*`(\w+)`", cell)) else None for cell in cells]
