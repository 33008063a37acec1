"""The registration a connection knows, as plain values: its table and what it lets through."""

from __future__ import annotations

import pytest

from csms.protocol.registration import ACCEPTED, PENDING, REJECTED, STATES, Registration

MONEY_AND_KEYS = [
    "StartTransaction", "StopTransaction", "TransactionEvent", "MeterValues", "DataTransfer",
    "Authorize",
]  # fmt: skip


@pytest.mark.parametrize("state", STATES)
def test_boot_is_always_allowed_and_its_answer_is_the_new_state(state: str) -> None:
    registration = Registration(state)
    assert registration.refusal("BootNotification") is None
    for answer in STATES:
        assert registration.booted(answer) == Registration(answer)


@pytest.mark.parametrize(
    ("state", "decision", "after"),
    [
        (ACCEPTED, ACCEPTED, ACCEPTED),
        (ACCEPTED, PENDING, PENDING),
        (ACCEPTED, REJECTED, REJECTED),
        (PENDING, ACCEPTED, PENDING),  # given only by the next boot's answer
        (PENDING, PENDING, PENDING),
        (PENDING, REJECTED, REJECTED),
        (REJECTED, ACCEPTED, REJECTED),
        (REJECTED, PENDING, REJECTED),
        (REJECTED, REJECTED, REJECTED),
    ],
)
def test_the_operator_takes_acceptance_away_at_once_and_never_gives_it(
    state: str, decision: str, after: str
) -> None:
    assert Registration(state).decided(decision).state == after


@pytest.mark.parametrize("state", [PENDING, REJECTED])
def test_a_charger_not_accepted_sends_nothing_that_reaches_money_or_keys(state: str) -> None:
    registration = Registration(state)
    for action in [*MONEY_AND_KEYS, "Heartbeat", "StatusNotification", "NotifyReport"]:
        violation = registration.refusal(action)
        assert violation is not None
        assert violation.details() == {
            "action": action,
            "constraint": "registration",
            "detail": violation.detail,
        }
        assert violation.description().startswith(f"{action}: the charger is {state}")
    assert Registration(ACCEPTED).refusal("TransactionEvent") is None


def test_a_pending_charger_may_send_what_it_was_asked_for_and_nothing_more() -> None:
    pending = Registration(PENDING)
    asked = pending.answered("GetBaseReport", {"requestId": 1}, {"status": "Accepted"})
    asked = asked.answered(
        "TriggerMessage", {"requestedMessage": "StatusNotification"}, {"status": "Accepted"}
    )
    asked = asked.answered(
        "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"},
        {"status": "Accepted"},
    )  # fmt: skip
    for action in ("NotifyReport", "StatusNotification", "SignCertificate"):
        assert asked.refusal(action) is None
    assert asked.refusal("Heartbeat") is not None
    # a trigger for transaction data, a refused request or another command asks for nothing
    for action, request, status in [
        ("TriggerMessage", {"requestedMessage": "MeterValues"}, "Accepted"),
        ("TriggerMessage", {"requestedMessage": "TransactionEvent"}, "Accepted"),
        ("TriggerMessage", {"requestedMessage": "Heartbeat"}, "Rejected"),
        ("GetReport", {"requestId": 2}, "EmptyResultSet"),
        ("DataTransfer", {"vendorId": "x"}, "Accepted"),
    ]:
        assert pending.answered(action, request, {"status": status}) == pending
    # a new boot answer forgets what was asked
    assert asked.booted(PENDING).refusal("NotifyReport") is not None
    # only a pending charger is asked for anything
    rejected = Registration(REJECTED)
    assert rejected.answered("GetBaseReport", {}, {"status": "Accepted"}) == rejected


def test_an_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="registration"):
        Registration("Maybe")
