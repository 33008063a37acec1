"""The compiled schema checks and memoised key conversions agree with the ocpp library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ocpp
import pytest
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
