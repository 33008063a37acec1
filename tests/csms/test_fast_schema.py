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


def _outcome(check: Any, message: Call | CallResult, version: str) -> tuple[str, str] | None:
    try:
        check(message, version)
    except OCPPError as exc:
        return type(exc).__name__, str(exc.details.get("cause", exc.description))
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
    assert fast == library  # same verdict, same error class, same words (or both accept)


def test_answers_are_checked_too() -> None:
    good = CallResult("1", {"currentTime": "2026-11-27T00:00:00.000Z"})
    good.action = "Heartbeat"
    bad = CallResult("1", {"currentTime": 5})
    bad.action = "Heartbeat"
    assert _both(good, "1.6") == (None, None)
    fast, library = _both(bad, "1.6")
    assert fast is not None and fast == library


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
