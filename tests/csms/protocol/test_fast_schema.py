"""The compiled schema checks and memoised key conversions agree with the ocpp library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ocpp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, _validate_payload

from benchmarks.ocpp_load_frames import CYCLE, ChargerScript
from csms.protocol import fast_schema
from csms.protocol.naming import to_camel, to_snake

SCHEMAS = Path(ocpp.__file__).parent


def _outcome(check: Any, message: Call | CallResult, version: str) -> str | None:
    """The verdict: the error class raised (so the CALLERROR code), or None."""
    try:
        check(message, version)
    except OCPPError as exc:
        return type(exc).__name__
    return None


def _both(message: Call | CallResult, version: str) -> tuple[Any, Any]:
    return _outcome(fast_schema.validate, message, version), _outcome(
        _validate_payload, message, version
    )


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_every_message_of_the_load_cycle_passes_both(version: str) -> None:
    script = ChargerScript("FS1", version, now=lambda: 1_790_000_000.0)  # type: ignore[arg-type]
    messages = [script.boot()] + [script.next_call() for _ in range(len(CYCLE) * 2)]
    for action, payload in messages:
        assert _both(Call("1", action, payload), version) == (None, None), action


BAD: list[tuple[str, str, dict[str, Any]]] = [
    ("1.6", "Heartbeat", {"extra": 1}),  # additionalProperties
    ("1.6", "StatusNotification", {"connectorId": 1, "status": "Available"}),  # required
    ("1.6", "StatusNotification", {"connectorId": "1", "errorCode": "NoError", "status": "x"}),
    (
        "1.6",
        "StartTransaction",
        {"connectorId": 1, "idTag": "X" * 21, "meterStart": 0, "timestamp": "2026-11-27T00:00:00Z"},
    ),  # maxLength
    (
        "1.6",
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [{"timestamp": "not a time", "sampledValue": [{"value": "1"}]}],
        },
    ),
    ("2.0.1", "Heartbeat", {"x": 1}),
    (
        "2.0.1",
        "StatusNotification",
        {
            "timestamp": "2026-11-27T00:00:00Z",
            "evseId": 1,
            "connectorId": 1,
            "connectorStatus": "Sleeping",
        },
    ),  # enum
    ("2.0.1", "TransactionEvent", {"eventType": "Started"}),
    (
        "2.0.1",
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": 5, "vendorName": "v"}},
    ),
]


@pytest.mark.parametrize(("version", "action", "payload"), BAD)
def test_a_refusal_is_the_librarys_own(version: str, action: str, payload: dict[str, Any]) -> None:
    fast, library = _both(Call("1", action, json.loads(json.dumps(payload))), version)
    assert fast == library  # same verdict, same error class (or both accept)


def test_answers_are_checked_too() -> None:
    good = CallResult("1", {"currentTime": "2026-11-27T00:00:00.000Z"})
    good.action = "Heartbeat"
    bad = CallResult("1", {"currentTime": 5})
    bad.action = "Heartbeat"
    assert _both(good, "1.6") == (None, None)
    fast, library = _both(bad, "1.6")
    assert fast is not None and fast == library


def _refusal(message: Call | CallResult, version: str) -> OCPPError:
    with pytest.raises(OCPPError) as refused:
        fast_schema.validate(message, version)
    return refused.value


EXPLAINED: list[tuple[str, str, dict[str, Any], str, str, str, str]] = [
    # version, action, payload, error code, path, constraint, part of the detail
    ("1.6", "Heartbeat", {"extra": 1}, "FormatViolation", "extra", "additionalProperties",
     "not allowed"),
    ("1.6", "StatusNotification", {"connectorId": 1, "status": "Available"}, "ProtocolError",
     "errorCode", "required", "missing"),
    ("1.6", "StatusNotification", {"connectorId": "1", "errorCode": "NoError", "status": "x"},
     "TypeConstraintViolation", "connectorId", "type", "expected integer, got string"),
    ("1.6", "StartTransaction", {"connectorId": 1, "idTag": "SECRET" * 4, "meterStart": 0,
     "timestamp": "2026-11-27T00:00:00Z"}, "TypeConstraintViolation", "idTag", "maxLength",
     "24 characters, maxLength 20"),
    ("1.6", "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": "2026-11-27T00:00:00Z",
     "sampledValue": [{"value": "1"}, {"value": 2}]}]}, "TypeConstraintViolation",
     "meterValue[0].sampledValue[1].value", "type", "expected string, got integer"),
    ("1.6", "DataTransfer", {"vendorId": "SECRET" * 200}, "TypeConstraintViolation", "vendorId",
     "maxLength", "1200 characters, maxLength 255"),
    ("2.0.1", "StatusNotification", {"timestamp": "2026-11-27T00:00:00Z", "evseId": 1,
     "connectorId": 1, "connectorStatus": "Sleeping"}, "FormatViolation", "connectorStatus",
     "enum", '"Sleeping" is not one of ["Available"'),
    ("2.0.1", "TransactionEvent", {"eventType": "Started"}, "ProtocolError", "timestamp",
     "required", "missing"),
    ("2.0.1", "BootNotification", {"reason": "PowerUp", "chargingStation": {"model": 5,
     "vendorName": "v"}}, "TypeConstraintViolation", "chargingStation.model", "type",
     "expected string, got integer"),
    ("2.0.1", "Authorize", {"idToken": {"idToken": "A", "type": "SECRET" * 1000}},
     "FormatViolation", "idToken.type", "enum", "is not one of"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("version", "action", "payload", "code", "path", "constraint", "detail"), EXPLAINED
)
def test_a_refusal_names_the_path_and_the_rule(
    version: str,
    action: str,
    payload: dict[str, Any],
    code: str,
    path: str,
    constraint: str,
    detail: str,
) -> None:
    error = _refusal(Call("1", action, payload), version)
    assert error.code == code
    assert error.details["path"] == path
    assert error.details["constraint"] == constraint
    assert error.details["action"] == action
    assert detail in error.details["detail"]
    assert error.description.startswith(f"{action} {path}: ")
    assert detail in error.description and len(error.description) <= 255
    # what the charger sent is echoed only in part (a value of at most 24 characters)
    assert "SECRET" * 4 not in json.dumps(error.details) + error.description


def test_an_answer_with_decimal_schemas_is_explained_too() -> None:
    answer = CallResult("1", {"status": "Maybe"})
    answer.action = "GetCompositeSchedule"  # one the library reads with Decimal floats
    error = _refusal(answer, "1.6")
    assert (error.code, error.details["path"], error.details["constraint"]) == (
        "FormatViolation",
        "status",
        "enum",
    )


def _property_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
            names |= _property_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= _property_names(value)
    return names


def test_key_conversion_matches_the_library_for_every_schema_property() -> None:
    names: set[str] = set()
    for path in list(SCHEMAS.glob("v16/schemas/*.json")) + list(
        SCHEMAS.glob("v201/schemas/*.json")
    ):
        names |= _property_names(json.loads(path.read_text(encoding="utf-8-sig")))
    assert len(names) > 250  # both versions' vocabularies
    payload = {name: [{name: 1}] for name in names}
    assert to_snake(payload) == camel_to_snake_case(payload)
    snake = camel_to_snake_case(payload)
    assert to_camel(snake) == snake_to_camel_case(snake)


def test_the_payload_is_left_as_it_came_and_formats_are_not_judged() -> None:
    # the library checks no "format" (a malformed date-time passes) and fills in no defaults
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available",
               "timestamp": "yesterday"}  # fmt: skip
    message = Call("1", "StatusNotification", dict(payload))
    assert _both(message, "1.6") == (None, None)
    assert message.payload == payload


def test_schema_defaults_are_not_filled_in() -> None:
    # MeterValuesRequest (2.0.1) declares defaults (unitOfMeasure.unit = "Wh", ...): the
    # library does not apply them, so neither may the compiled check
    sampled = {"value": 10.0, "unitOfMeasure": {"multiplier": 3}}
    payload = {
        "evseId": 1,
        "meterValue": [{"timestamp": "2026-11-27T00:00:00.000Z", "sampledValue": [sampled]}],
    }
    message = Call("1", "MeterValues", json.loads(json.dumps(payload)))
    assert _both(message, "2.0.1") == (None, None)
    assert message.payload == payload


T0 = "2026-11-27T00:00:00Z"
OUT_OF_RANGE: list[tuple[str, str, dict[str, Any], str, str]] = [
    # version, action, payload, path, constraint: every OCPP integer is 32-bit signed, every
    # number a finite double, whatever the schema leaves open
    ("1.6", "StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 2**70,
     "timestamp": T0}, "meterStart", "maximum"),
    ("1.6", "StartTransaction", {"connectorId": -(2**31) - 1, "idTag": "A", "meterStart": 0,
     "timestamp": T0}, "connectorId", "minimum"),
    ("1.6", "StopTransaction", {"meterStop": 1, "timestamp": T0, "transactionId": 2**31},
     "transactionId", "maximum"),
    ("1.6", "MeterValues", {"connectorId": 2**40, "meterValue": [{"timestamp": T0,
     "sampledValue": [{"value": "1"}]}]}, "connectorId", "maximum"),
    ("2.0.1", "TransactionEvent", {"eventType": "Started", "timestamp": T0,
     "triggerReason": "Authorized", "seqNo": 2**70, "transactionInfo": {"transactionId": "T"}},
     "seqNo", "maximum"),
    ("2.0.1", "StatusNotification", {"timestamp": T0, "evseId": 2**40, "connectorId": 1,
     "connectorStatus": "Available"}, "evseId", "maximum"),
    ("2.0.1", "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": T0, "sampledValue": [
     {"value": 10**400}]}]}, "meterValue[0].sampledValue[0].value", "maximum"),
    ("2.0.1", "NotifyReport", {"requestId": -(2**40), "generatedAt": T0, "seqNo": 0},
     "requestId", "minimum"),
]  # fmt: skip


@pytest.mark.parametrize(("version", "action", "payload", "path", "constraint"), OUT_OF_RANGE)
def test_an_integer_out_of_range_is_a_property_constraint_violation_naming_it(
    version: str, action: str, payload: dict[str, Any], path: str, constraint: str
) -> None:
    """The schemas set no bounds (the library accepts these payloads); the CSMS does, once,
    in the compiled check, so that no handler ever sees a value its database column cannot
    hold."""
    assert _outcome(_validate_payload, Call("1", action, payload), version) is None
    error = _refusal(Call("1", action, payload), version)
    assert error.code == "PropertyConstraintViolation"
    assert (error.details["path"], error.details["constraint"]) == (path, constraint)
    assert error.details["action"] == action
    assert error.description.startswith(f"{action} {path}: ")
    assert "breaks" in error.details["detail"] and len(error.description) <= 255


def test_the_bounds_themselves_are_in_range() -> None:
    for meter in (2**63 - 1, -(2**63), 2_500_000_000):  # 1.6 registers are 64-bit
        start = {"connectorId": 1, "idTag": "A", "meterStart": meter, "timestamp": T0}
        assert _both(Call("1", "StartTransaction", start), "1.6") == (None, None)
    too_big = {"connectorId": 1, "idTag": "A", "meterStart": 2**63, "timestamp": T0}
    assert _both(Call("1", "StartTransaction", too_big), "1.6") != (None, None)
    value = {"evseId": 1, "meterValue": [{"timestamp": T0, "sampledValue": [{"value": 1e308}]}]}
    assert _both(Call("1", "MeterValues", value), "2.0.1") == (None, None)


def test_an_answer_out_of_range_is_refused_too() -> None:
    answer = CallResult("1", {"listVersion": 2**40})
    answer.action = "GetLocalListVersion"
    error = _refusal(answer, "1.6")
    assert (error.code, error.details["path"]) == ("PropertyConstraintViolation", "listVersion")


# --- the compiled check never accepts what the library refuses --------------------------------

_JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),  # lone surrogates too (a frame would refuse them; an answer not)
    st.sampled_from(["Available", "Wh", "Sample.Periodic", "2026-11-27T00:00:00Z", ""]),
)
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a payload: each key of each object and each item of each array."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _load_cycle(version: str) -> list[tuple[str, dict[str, Any]]]:
    script = ChargerScript("FS2", version, now=lambda: 1_790_000_000.0)  # type: ignore[arg-type]
    return [script.boot()] + [script.next_call() for _ in range(len(CYCLE) * 2)]


@settings(max_examples=400, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_mutated_payload_gets_the_librarys_verdict(version: str, data: st.DataObject) -> None:
    """A valid message of the load cycle with one place replaced by any JSON value, removed,
    or given an extra key: the compiled check (with the library behind it) reaches the
    library's verdict. The one allowed difference is the CSMS's own bound on numbers, which
    the library does not set."""
    action, payload = data.draw(st.sampled_from(_load_cycle(version)))
    payload = json.loads(json.dumps(payload))
    path = data.draw(st.sampled_from(_paths(payload)))
    how = data.draw(st.sampled_from(["replace", "remove", "add"]))
    new = data.draw(_JSON)
    if how == "add" or not path:
        parent = payload
        for step in path:
            parent = parent[step]
        if not isinstance(parent, dict):
            return
        parent[data.draw(st.text(max_size=8))] = new
    else:
        parent = payload
        for step in path[:-1]:
            parent = parent[step]
        if how == "remove":
            del parent[path[-1]]
        else:
            parent[path[-1]] = new
    fast, library = _both(Call("1", action, payload), version)
    if fast == "PropertyConstraintViolationError" and library is None:
        assert _numbers_out_of_bounds(payload), payload
        return
    assert fast == library, payload


def _numbers_out_of_bounds(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_numbers_out_of_bounds(item) for item in value.values())
    if isinstance(value, list):
        return any(_numbers_out_of_bounds(item) for item in value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not fast_schema.INTEGER_MIN <= value <= fast_schema.INTEGER_MAX
    return isinstance(value, float) and abs(value) > fast_schema.NUMBER_MAX


def test_a_key_the_compiled_check_cannot_read_goes_to_the_library() -> None:
    """A key holding a lone surrogate (valid JSON, ``"\\ud800"``) cannot become a Rust string
    and the compiled check raises on it: the library judges such a payload instead."""
    extra = json.loads('{"vendorId": "v", "\\ud800": 1}')
    fast, library = _both(Call("1", "DataTransfer", extra), "1.6")
    assert fast == library == "FormatViolationError"
    data = json.loads('{"vendorId": "v", "data": {"\\ud800": 1}}')  # any object is allowed
    assert _both(Call("1", "DataTransfer", data), "2.0.1") == (None, None)


_SCHEDULE_1_6 = {
    "chargingRateUnit": "W",
    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": None}],
}


@pytest.mark.parametrize(
    "limit", ["1e308", "1" + "0" * 400, "12345678901234567890123456789.5", "-1e30"]
)
def test_a_number_too_big_for_the_librarys_decimal_multiple_of_is_refused_not_raised(
    limit: str,
) -> None:
    """The library checks 1.6 schedules' ``multipleOf: 0.1`` on Decimal numbers; past 28
    digits of quotient the remainder raises decimal.InvalidOperation, which is no OCPPError
    and escaped validate(): a charger's GetCompositeSchedule answer (or a SetChargingProfile
    of ours) with such a limit. It is refused as the library refuses a multipleOf."""
    schedule = json.dumps(_SCHEDULE_1_6).replace("null", limit)
    call = Call("1", "SetChargingProfile", json.loads(
        '{"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1, "stackLevel": 0, '
        '"chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute", '
        f'"chargingSchedule": {schedule}}}}}'
    ))  # fmt: skip
    assert _outcome(fast_schema.validate, call, "1.6") == "FormatViolationError"
    answer = CallResult("1", json.loads(
        f'{{"status": "Accepted", "connectorId": 1, "chargingSchedule": {schedule}}}'
    ))  # fmt: skip
    answer.action = "GetCompositeSchedule"
    error = _refusal(answer, "1.6")
    assert (error.code, error.details["constraint"]) == ("FormatViolation", "multipleOf")
    assert error.details["path"] == "chargingSchedule.chargingSchedulePeriod[0].limit"


def test_a_schedule_limit_of_one_decimal_still_passes_and_two_do_not() -> None:
    for limit, verdict in (("21.4", None), ("4.11", "FormatViolationError")):
        answer = CallResult("1", json.loads(
            '{"status": "Accepted", "connectorId": 1, "chargingSchedule": '
            + json.dumps(_SCHEDULE_1_6).replace("null", limit) + "}"
        ))  # fmt: skip
        answer.action = "GetCompositeSchedule"
        assert _outcome(fast_schema.validate, answer, "1.6") == verdict
