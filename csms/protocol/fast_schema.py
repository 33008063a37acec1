"""Schema checks of incoming CALLs and of our answers: compiled, inline, same verdicts.

The ``ocpp`` library validates every payload with ``jsonschema`` (an interpreter walking the
schema) in a thread of the default executor: two thread hand-overs and an interpreter's walk
per message, most of the CSMS's own cost for a Heartbeat. Here each official schema (taken from
the library, so the same files) is compiled once by ``jsonschema-rs`` (a draft-4 validator in
Rust) and run inline, in a microsecond or two.

The library stays the judge: a payload the compiled check refuses, or cannot read (a key holding
a lone surrogate, which a Rust string cannot), is checked again by the library's own
validator, which raises the error the library would have raised (the right CALLERROR code), or
accepts it. The error raised says what the library's does not: the path and the rule that
failed, from the first error of the library's validator (the one it raises), as a
:class:`~ocpp_rpc.violations.Violation`.

A payload the compiled check accepts satisfies the same draft-4 rules the library applies
(every schema is compiled as draft 4, as the library reads them, without ``format`` checks,
as the library runs them; the payload is only read). Actions whose schemas the library reads
with ``Decimal`` floats (``multipleOf`` on 1.6 charging profiles) always go to the library.

One rule is the CSMS's own, added to every compiled schema: an ``integer`` is 32-bit signed
(OCPP 2.0.1 part 2 defines its integer so; 1.6 came from SOAP's ``xs:int``; and the integer
columns are 32-bit on PostgreSQL) and a ``number`` is a finite double. The official schemas
set no such bounds, so without it an absurd value reached a handler and failed in the
database as an InternalError. Checked in the compiled code it costs nothing per message; a
payload that breaks only this rule (the library accepts it) is refused with
``PropertyConstraintViolation`` naming the path and the bound.
"""

from __future__ import annotations

import decimal
import sys
import threading
from collections.abc import Callable
from typing import Any

import jsonschema_rs
from jsonschema import Draft4Validator
from ocpp.exceptions import OCPPError, PropertyConstraintViolationError
from ocpp.messages import Call, CallResult, MessageType, _validate_payload, get_validator

from csms.protocol import violations
from ocpp_rpc.violations import Violation

DRAFT_4 = "http://json-schema.org/draft-04/schema#"
# the library validates these with Decimal floats (see ocpp.messages._validate_payload)
_LIBRARY_ONLY = {
    ("1.6", MessageType.Call, "SetChargingProfile"),
    ("1.6", MessageType.Call, "RemoteStartTransaction"),
    ("1.6", MessageType.CallResult, "GetCompositeSchedule"),
}
INTEGER_MIN, INTEGER_MAX = -(2**31), 2**31 - 1
NUMBER_MAX = sys.float_info.max
_BOUNDS = {"integer": (INTEGER_MIN, INTEGER_MAX), "number": (-NUMBER_MAX, NUMBER_MAX)}
# 1.6 sends meter registers (Wh) as integers, and a busy charger's lifetime register passes
# 2**31 Wh: these are kept to what the 64-bit register columns hold
REGISTERS = frozenset({"meterStart", "meterStop"})
REGISTER_BOUNDS = (-(2**63), 2**63 - 1)
Check = Callable[[Any], bool]  # whether the payload passes
_checks: dict[tuple[str, int, str], Check | None] = {}
_lock = threading.Lock()


def bounded(schema: Any, *, register: bool = False) -> Any:
    """A copy of ``schema`` in which every ``integer`` is 32-bit (a meter register, 64-bit)
    and every ``number`` a finite double (a bound the schema sets itself is kept where it is
    tighter)."""
    if isinstance(schema, list):
        return [bounded(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: bounded(value) for key, value in schema.items()}
    if isinstance(props := schema.get("properties"), dict):
        copy["properties"] = {
            name: bounded(value, register=name in REGISTERS) for name, value in props.items()
        }
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    bounds = next((_BOUNDS[k] for k in kinds if isinstance(k, str) and k in _BOUNDS), None)
    if register and bounds is not None and "integer" in kinds:
        bounds = REGISTER_BOUNDS
    if bounds is not None:
        low, high = bounds
        copy["minimum"] = max(schema.get("minimum", low), low)
        copy["maximum"] = min(schema.get("maximum", high), high)
    return copy


def _bounded_schema(version: str, message_type: int, action: str) -> dict[str, Any] | None:
    """The official schema of the message, bounded, as draft 4 (None: no such schema)."""
    try:
        schema: dict[str, Any] = bounded(get_validator(message_type, action, version).schema)
    except (OSError, ValueError):
        return None  # unknown action: the library raises the right error
    schema["$schema"] = DRAFT_4
    return schema


def _compile(version: str, message_type: int, action: str) -> Check | None:
    if (version, message_type, action) in _LIBRARY_ONLY:
        return None
    schema = _bounded_schema(version, message_type, action)
    if schema is None:
        return None
    try:
        # as the library: no ``format`` checks; the library words the errors
        validator = jsonschema_rs.Draft4Validator(schema, validate_formats=False)
    except jsonschema_rs.ValidationError:
        return None  # a schema the compiler cannot read: the library checks it
    check: Check = validator.is_valid
    return check


def _check_for(version: str, message_type: int, action: str) -> Check | None:
    key = (version, message_type, action)
    try:
        return _checks[key]
    except KeyError:
        pass
    with _lock:
        if key not in _checks:
            _checks[key] = _compile(version, message_type, action)
        return _checks[key]


def validate(message: Call | CallResult, version: str) -> None:
    """Raises the library's OCPPError when ``message``'s payload breaks its schema, with a
    description and details that name the failing path and rule, and
    ``PropertyConstraintViolation`` when it breaks only the bounds of :func:`bounded`."""
    check = _check_for(version, message.message_type_id, message.action)
    if check is not None:
        try:
            if check(message.payload):
                return
        except (ValueError, TypeError, OverflowError, RecursionError):
            pass  # a value the compiled check cannot read: the library decides
    with decimal.localcontext() as context:
        # the library's ``multipleOf`` on Decimal numbers (the actions of _LIBRARY_ONLY) takes
        # a remainder, which traps (decimal.InvalidOperation, no OCPPError) when the quotient
        # has more digits than the context's precision: ``"limit": 1e308``. Untrapped, the
        # remainder is NaN and the library refuses the number (multipleOf: FormatViolation)
        context.traps[decimal.InvalidOperation] = False
        context.traps[decimal.Overflow] = False
        try:
            _validate_payload(message, version)
        except OCPPError as error:
            raise _explained(error, message, version) from None
    if check is not None:  # the library accepts it: what failed is a bound of ours
        violation = _out_of_range(message, version)
        if violation is not None:
            raise PropertyConstraintViolationError(violation.description(), violation.details())


def _out_of_range(message: Call | CallResult, version: str) -> Violation | None:
    """The first value of the payload outside the bounds of :func:`bounded` (None if the
    compiled check refused it for no such reason: then the library's verdict stands)."""
    schema = _bounded_schema(version, message.message_type_id, message.action)
    if schema is None:
        return None
    for error in Draft4Validator(schema).iter_errors(message.payload):
        if error.validator in ("minimum", "maximum"):
            return violations.from_schema_error(error, message.action)
    return None


def _explained(error: OCPPError, message: Call | CallResult, version: str) -> OCPPError:
    """``error`` (the library's verdict) with the path and rule of the library's first
    schema error; unchanged when there is none (no schema for the action)."""
    key = (version, message.message_type_id, message.action)
    try:
        validator = get_validator(
            message.message_type_id,
            message.action,
            version,
            parse_float=decimal.Decimal if key in _LIBRARY_ONLY else float,
        )
    except (OSError, ValueError):
        return error
    first = next(iter(validator.iter_errors(message.payload)), None)
    if first is None:
        return error
    violation = violations.from_schema_error(first, message.action)
    return type(error)(violation.description(), violation.details())
