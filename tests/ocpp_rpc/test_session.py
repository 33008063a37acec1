"""The OCPP-J session with plain strings: frames in, events and frames out, no sockets."""

from __future__ import annotations

import itertools
import json

import pytest

from ocpp_rpc import (
    AnswerDropped,
    CallInFlight,
    CallReceived,
    ErrorReceived,
    FrameRefused,
    NothingToAnswer,
    ResultReceived,
    Session,
)


def session(version: str = "2.0.1", max_frame_bytes: int | None = None) -> Session:
    counter = itertools.count(1)
    return Session(
        version, max_frame_bytes=max_frame_bytes, unique_ids=lambda: f"id{next(counter)}"
    )


def test_a_call_in_is_an_event_and_its_answer_a_frame_out() -> None:
    s = session()
    s.receive_data('[2,"a","Heartbeat",{}]')
    (event,) = s.events_received()
    assert event == CallReceived("a", "Heartbeat", {})
    assert (event.as_call().unique_id, event.as_call().action) == ("a", "Heartbeat")
    assert s.events_received() == []  # each event is handed out once
    s.send_result("a", {"currentTime": "2030-01-01T00:00:00Z"})
    assert s.data_to_send() == ['[3,"a",{"currentTime":"2030-01-01T00:00:00Z"}]']
    assert s.data_to_send() == []


def test_our_call_gets_the_generated_id_and_its_answer_is_matched() -> None:
    s = session()
    assert s.send_call("Reset", {"type": "Immediate"}) == "id1"
    assert s.data_to_send() == ['[2,"id1","Reset",{"type":"Immediate"}]']
    assert s.pending is not None and s.pending.action == "Reset"
    s.receive_data('[3,"id1",{"status":"Accepted"}]')
    assert s.events_received() == [ResultReceived("id1", "Reset", {"status": "Accepted"})]
    assert s.pending is None
    assert s.send_call("Reset", {"type": "OnIdle"}) == "id2"


def test_a_callerror_answers_our_call() -> None:
    s = session()
    s.send_call("Reset", {"type": "Immediate"})
    s.receive_data('[4,"id1","NotImplemented","no",{"x":1}]')
    assert s.events_received() == [ErrorReceived("id1", "Reset", "NotImplemented", "no", {"x": 1})]
    assert s.pending is None


def test_one_call_of_ours_in_flight_at_a_time() -> None:
    s = session()
    s.send_call("Reset", {"type": "Immediate"})
    with pytest.raises(CallInFlight) as raised:
        s.send_call("GetVariables", {})
    assert (raised.value.pending_id, raised.value.pending_action) == ("id1", "Reset")
    assert s.data_to_send() == ['[2,"id1","Reset",{"type":"Immediate"}]']  # nothing more


def test_an_answer_to_no_pending_call_is_dropped_with_its_reason() -> None:
    s = session()
    s.receive_data('[3,"nobody",{}]')
    assert s.events_received() == [AnswerDropped("nobody", "no CALL of ours is pending")]
    s.send_call("Reset", {"type": "Immediate"})
    s.receive_data('[4,"other","GenericError","",{}]')
    (dropped,) = s.events_received()
    assert isinstance(dropped, AnswerDropped) and "Reset id1" in dropped.reason
    assert s.pending is not None  # still waiting for its own answer


def test_an_abandoned_call_lets_the_next_go_and_its_late_answer_is_dropped() -> None:
    s = session()
    s.send_call("Reset", {"type": "Immediate"})
    s.abandon_call("id1")
    s.send_call("Reset", {"type": "OnIdle"})
    s.receive_data('[3,"id1",{"status":"Accepted"}]')
    assert [type(e) for e in s.events_received()] == [AnswerDropped]
    assert s.pending is not None and s.pending.unique_id == "id2"


def test_a_call_is_answered_once() -> None:
    s = session()
    with pytest.raises(NothingToAnswer):
        s.send_result("never-asked", {})
    s.receive_data('[2,"a","Heartbeat",{}]')
    s.send_error("a", "InternalError", "late", {})
    with pytest.raises(NothingToAnswer):
        s.send_result("a", {})
    assert len(s.data_to_send()) == 1


@pytest.mark.parametrize(
    ("version", "code"), [("1.6", "FormationViolation"), ("2.0.1", "FormatViolation")]
)
def test_a_malformed_call_is_refused_in_the_versions_spelling(version: str, code: str) -> None:
    s = session(version)
    s.receive_data('[2,"a","Heartbeat"]')
    (event,) = s.events_received()
    assert isinstance(event, FrameRefused) and event.error.reply
    answer = s.refuse(event.error)
    assert answer.error_code == code
    (frame,) = s.data_to_send()
    assert json.loads(frame)[:3] == [4, "a", code]


def test_a_frame_without_a_readable_id_is_answered_as_minus_one() -> None:
    s = session()
    s.receive_data("not json")
    (event,) = s.events_received()
    assert isinstance(event, FrameRefused)
    s.refuse(event.error)
    assert json.loads(s.data_to_send()[0])[:3] == [4, "-1", "RpcFrameworkError"]


def test_a_broken_answer_is_refused_but_never_answered() -> None:
    s = session()
    s.send_call("Reset", {"type": "Immediate"})
    s.data_to_send()
    s.receive_data('[3,"id1"]')
    (event,) = s.events_received()
    assert isinstance(event, FrameRefused) and not event.error.reply
    s.refuse(event.error)
    assert s.data_to_send() == []
    assert s.pending is not None  # a broken answer does not end our CALL


def test_an_oversized_frame_is_refused_with_the_id_read_from_its_head() -> None:
    s = session(max_frame_bytes=64)
    s.receive_data('[2,"big","DataTransfer",{"vendorId":"' + "é" * 40 + '"}]')
    (event,) = s.events_received()
    assert isinstance(event, FrameRefused)
    assert (event.error.unique_id, event.error.details["constraint"]) == ("big", "maxFrameBytes")
    s.receive_data('[2,"small","Heartbeat",{}]')  # far below the limit: parsed
    assert s.events_received() == [CallReceived("small", "Heartbeat", {})]


def test_bytes_are_measured_as_bytes() -> None:
    s = session(max_frame_bytes=30)
    s.receive_data('[2,"a","Heartbeat",{"x":"éééé"}]'.encode())  # 33 bytes, 29 characters
    (event,) = s.events_received()
    assert isinstance(event, FrameRefused)
