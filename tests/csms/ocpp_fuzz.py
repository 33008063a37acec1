"""Hypothesis strategies for OCPP-J frames a charger might send: valid, nearly valid and junk.

* ``payload_for(version, action)``: a payload built from the ``ocpp`` library's JSON schema of
  the action's request (required keys always, optional keys sometimes, enums, string lengths,
  ``date-time`` strings), so that most of them pass validation and reach the handlers;
* ``mutated(payload)``: the same with one change (a key dropped or added, a value of the
  wrong type, a string too long, junk nested inside);
* ``frames(version, ...)``: CALLs built from those, from the frames of a real charging session
  (``REAL``) or of our extension (``Settlement``, ``SettlementKey``, ``Synced``), mutated half
  of the time, and broken frames (wrong message type ids, lengths and unique ids, answers to
  nothing, ``NaN``, text that is not JSON, binary frames).

Numbers go far beyond what OCPP's 32-bit integers and the store hold (+-2**70, 1e308), and
nesting far beyond what the CSMS parses (5,000 levels, sent as text: Python's own encoder stops
at about 1,000).
"""

from __future__ import annotations

import base64
import inspect
import json
from datetime import UTC, timedelta, timezone
from functools import cache
from importlib import resources
from typing import Any

from hypothesis import strategies as st

from csms.protocol.v16 import ChargePoint16
from csms.protocol.v201 import ChargePoint201
from qr_extension.wire import MSG_SETTLEMENT, MSG_SETTLEMENT_KEY, MSG_SYNCED, VENDOR_ID

Json = Any
INT_BOUND = 2**70
NEST_MAX = 40  # levels of values built as objects: around the CSMS's limit of 32
DEEP_MAX = 5000  # levels of frames written as text


@cache
def actions(version: str) -> tuple[str, ...]:
    """The actions the CSMS answers in ``version`` (every CALL a charger may send it)."""
    cls = ChargePoint16 if version == "1.6" else ChargePoint201
    found = {getattr(m, "_on_action", None) for _, m in inspect.getmembers(cls)}
    return tuple(sorted(str(a) for a in found if a is not None))


# --- plain JSON values ----------------------------------------------------------------------

NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",  # a lone surrogate: valid in JSON (as an escape), not in UTF-8
        "\u202e" + "gpj.exe",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🚗⚡",
        "'; DROP TABLE chargers; --",
        "%s%n%x",
        "${jndi:ldap://x}",
        "null",
        "1e309",
        "a" * 300,
        "é" * 1000,
    ]
)
TEXT = st.one_of(st.text(max_size=40), NASTY_TEXT)
INTEGERS = st.one_of(
    st.integers(-INT_BOUND, INT_BOUND),
    st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, -(2**31) - 1, 2**53, 2**63, -(2**63) - 1, 2**70]),
)
FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e30, -1e30, 1.7976931348623157e308, 5e-324, 2.0**63]),
)
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, FLOATS, TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def nested(draw: st.DrawFn) -> Json:
    """A value buried ``1..NEST_MAX`` levels deep in lists and objects."""
    value: Json = draw(SCALARS)
    for _ in range(draw(st.integers(1, NEST_MAX))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


JUNK = st.one_of(JSON, nested())

DATE_TIMES = st.one_of(
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-12))])).map(
        lambda d: d.isoformat()
    ),
    st.sampled_from(
        [
            "2024-06-13T12:00:00Z",
            "2024-06-13T12:00:00.123Z",
            "2024-06-13T12:00:00",  # no offset
            "2024-02-30T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "+275760-09-13T00:00:00Z",
            "2024-06-13T12:00:00+14:00",
            "2024-06-13T12:00:00-23:59",
            "today",
            "",
        ]
    ),
)

# --- payloads from the library's schemas ----------------------------------------------------


@cache
def request_schema(version: str, action: str) -> dict[str, Any]:
    """The ``ocpp`` library's JSON schema of the request of ``action``."""
    folder = "v16" if version == "1.6" else "v201"
    name = f"{action}.json" if version == "1.6" else f"{action}Request.json"
    text = resources.files("ocpp").joinpath(folder, "schemas", name).read_text("utf-8-sig")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _from_schema(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Json]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        return st.deferred(lambda: _from_schema(root["definitions"][name], root))
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        return _object(node, root)
    if kind == "array":
        items = _from_schema(node.get("items", {}), root)
        low = node.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=max(low, min(node.get("maxItems", 3), 3)))
    if kind == "string":
        if node.get("format") == "date-time":
            return DATE_TIMES
        return st.text(max_size=node.get("maxLength", 50))
    if kind == "integer":
        low = int(node.get("minimum", -(10**6)))
        return st.integers(low, max(low, int(node.get("maximum", 10**6))))
    if kind == "number":
        low = float(node.get("minimum", -1e6))
        return st.floats(low, max(low, 1e6), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    return JSON


def _object(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Json]:
    properties: dict[str, Any] = node.get("properties", {})
    required = [k for k in node.get("required", []) if k in properties]
    optional = [k for k in properties if k not in required]
    return st.fixed_dictionaries(
        {k: _from_schema(properties[k], root) for k in required},
        optional={k: _from_schema(properties[k], root) for k in optional},
    )


@cache
def payload_for(version: str, action: str) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads of ``action`` that follow its request schema (most pass validation)."""
    schema = request_schema(version, action)
    return _from_schema(schema, schema)


@st.composite
def mutated(draw: st.DrawFn, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with one change somewhere inside it."""
    paths = list(_paths(payload))
    path = draw(st.sampled_from(paths)) if paths else ()
    how = draw(st.sampled_from(["replace", "drop", "add", "long", "huge", "wrap"]))
    changed: dict[str, Any] = _apply(payload, path, how, draw)
    return changed


def _paths(value: Json, prefix: tuple[Any, ...] = ()) -> Any:
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


def _apply(value: Json, path: tuple[Any, ...], how: str, draw: st.DrawFn) -> Json:
    if path:
        head, rest = path[0], path[1:]
        copy = dict(value) if isinstance(value, dict) else list(value)
        if not rest and how == "drop":
            del copy[head]
            return copy
        copy[head] = _apply(value[head], rest, how, draw)
        return copy
    if how == "add" and isinstance(value, dict):
        return {**value, draw(TEXT): draw(JUNK)}
    if how == "long":
        return draw(st.sampled_from(["x" * 2000, "é" * 9000, list(range(500))]))
    if how == "huge":
        return draw(
            st.sampled_from([2**70, -(2**70), 2**63, 2**31, 10**30, 1e30, 1e308, 5e-324, 1.5])
        )
    if how == "wrap":
        return {"value": value} if draw(st.booleans()) else [value]
    return draw(JUNK)


# --- real frames of our extension -----------------------------------------------------------


def _b64(obj: object) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@st.composite
def settlement_like(draw: st.DrawFn, charger_id: str) -> str:
    """A compact JWS whose header and claims look like a settlement of ``charger_id``."""
    header = {"alg": "ES256", "typ": "settle+jwt", "kid": draw(TEXT)}
    claims = draw(
        st.fixed_dictionaries(
            {"iss": st.sampled_from([charger_id, "other"])},
            optional={
                k: JSON for k in ("oid", "tid", "seq", "ts", "te", "m0", "m1", "amt", "cur", "u")
            },
        )
    )
    return f"{_b64(header)}.{_b64(claims)}.{draw(st.text('abcXYZ-_', max_size=86))}"


def extension_payload(charger_id: str) -> st.SearchStrategy[dict[str, Any]]:
    """DataTransfer payloads of our vendor: Settlement, SettlementKey, Synced, and others."""
    data = st.one_of(
        settlement_like(charger_id),
        st.builds(lambda seq: json.dumps({"seq": seq}), st.one_of(INTEGERS, FLOATS, TEXT)),
        st.builds(
            json.dumps,
            st.fixed_dictionaries(
                {"kty": st.sampled_from(["EC", "RSA", "oct"]), "crv": TEXT, "x": TEXT, "y": TEXT}
            ),
        ),
        TEXT,
    )
    return st.fixed_dictionaries(
        {
            "vendorId": st.sampled_from([VENDOR_ID, VENDOR_ID.upper(), ""]),
            "messageId": st.sampled_from([MSG_SETTLEMENT, MSG_SETTLEMENT_KEY, MSG_SYNCED, "X"]),
            "data": data,
        }
    )


# --- frames ---------------------------------------------------------------------------------


NOW = "2024-06-13T12:00:00Z"
LATER = "2024-06-13T12:30:00Z"
_ENERGY = [{"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
_ENERGY_201 = [
    {
        "value": 1.5,
        "measurand": "Energy.Active.Import.Register",
        "unitOfMeasure": {"unit": "kWh", "multiplier": 0},
        "context": "Sample.Periodic",
    }
]
# Frames of a real charging session, for the mutations to start from: (action, payload).
REAL: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "1.6": [
        (
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Preparing", "timestamp": NOW},
        ),
        ("Authorize", {"idTag": "TAG-1"}),
        (
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG-1", "meterStart": 1000, "timestamp": NOW},
        ),
        (
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": 1,
                "meterValue": [{"timestamp": NOW, "sampledValue": _ENERGY}],
            },
        ),
        (
            "StopTransaction",
            {
                "transactionId": 1,
                "meterStop": 2500,
                "timestamp": LATER,
                "idTag": "TAG-1",
                "reason": "EVDisconnected",
                "transactionData": [{"timestamp": LATER, "sampledValue": _ENERGY}],
            },
        ),
    ],
    "2.0.1": [
        (
            "StatusNotification",
            {"timestamp": NOW, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
        ),
        (
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": NOW,
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": {"transactionId": "T-1", "chargingState": "Charging"},
                "idToken": {"idToken": "TAG-1", "type": "ISO14443"},
                "evse": {"id": 1, "connectorId": 1},
                "meterValue": [{"timestamp": NOW, "sampledValue": _ENERGY_201}],
            },
        ),
        (
            "TransactionEvent",
            {
                "eventType": "Updated",
                "timestamp": NOW,
                "triggerReason": "MeterValuePeriodic",
                "seqNo": 1,
                "transactionInfo": {"transactionId": "T-1"},
                "meterValue": [{"timestamp": NOW, "sampledValue": _ENERGY_201}],
            },
        ),
        (
            "TransactionEvent",
            {
                "eventType": "Ended",
                "timestamp": LATER,
                "triggerReason": "EVCommunicationLost",
                "seqNo": 2,
                "transactionInfo": {"transactionId": "T-1", "stoppedReason": "EVDisconnected"},
                "meterValue": [{"timestamp": LATER, "sampledValue": _ENERGY_201}],
            },
        ),
        (
            "NotifyReport",
            {
                "requestId": 1,
                "generatedAt": NOW,
                "seqNo": 0,
                "tbc": False,
                "reportData": [
                    {
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "Power"},
                        "variableAttribute": [{"type": "Actual", "value": "22000"}],
                    }
                ],
            },
        ),
    ],
}


@st.composite
def call_frame(draw: st.DrawFn, version: str, charger_id: str, uid: str) -> list[Json]:
    """A CALL with a payload built from its schema, taken from a real session or from our
    extension, mutated half of the time (or an action that does not exist)."""
    source = draw(st.sampled_from(["schema", "schema", "real", "extension", "unknown"]))
    if source == "unknown":
        return [2, uid, draw(st.sampled_from(["NoSuchAction", "heartbeat", ""])), {}]
    if source == "real":
        action, payload = draw(st.sampled_from(REAL[version]))
    elif source == "extension":
        action, payload = "DataTransfer", draw(extension_payload(charger_id))
    else:
        action = draw(st.sampled_from(actions(version)))
        payload = draw(payload_for(version, action))
    if draw(st.booleans()):
        payload = draw(mutated(payload))
    return [2, uid, action, payload]


@st.composite
def broken_frame(draw: st.DrawFn, uid: str) -> list[Json] | str | bytes:
    """A frame with something wrong in its envelope, or not JSON at all."""
    kind = draw(
        st.sampled_from(["type", "length", "uid", "answer", "text", "bytes", "nan", "deep"])
    )
    if kind == "type":
        type_id = draw(st.one_of(INTEGERS, FLOATS, TEXT, st.none(), st.booleans()))
        return [type_id, uid, "Heartbeat", {}]
    if kind == "length":
        return [2, uid, *draw(st.lists(JUNK, max_size=6))]
    if kind == "uid":
        bad = draw(st.one_of(st.text(min_size=37, max_size=60), st.just(""), INTEGERS, JSON))
        return [2, bad, "Heartbeat", {}]
    if kind == "answer":  # an answer to a CALL the CSMS never sent: no reply is due
        result = [3, uid, draw(JUNK)]
        error = [4, uid, draw(TEXT), draw(TEXT), draw(JUNK)]
        return result if draw(st.booleans()) else error
    if kind == "deep":  # too deep for the CSMS (and for Python's own JSON encoder)
        levels = draw(st.integers(1, DEEP_MAX))
        head = draw(st.sampled_from([f'[2,"{uid}","Heartbeat",{{"customData":', f'[3,"{uid}",']))
        return head + "[" * levels + "]" * levels + ("}]" if head.startswith("[2") else "]")
    if kind == "nan":
        return f'[2,"{uid}","MeterValues",{{"connectorId":NaN,"meterValue":[Infinity]}}]'
    if kind == "bytes":  # a binary frame, maybe not even UTF-8
        return draw(st.one_of(st.binary(max_size=200), TEXT.map(_utf8).map(str.encode)))
    text = draw(st.one_of(TEXT, st.builds(lambda j: json.dumps(j)[:-1], JSON)))
    return _utf8(text)  # a text frame is UTF-8: a lone surrogate cannot be sent as it is


def _utf8(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def frames(version: str, charger_id: str, uid: str) -> st.SearchStrategy[list[Json] | str | bytes]:
    """Any frame a broken or hostile charger might send, most of them CALLs."""
    return st.one_of(
        call_frame(version, charger_id, uid),
        call_frame(version, charger_id, uid),
        broken_frame(uid),
    )
