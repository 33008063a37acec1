"""Schema checks of incoming CALLs and of our answers: compiled, inline, same verdicts.

The ``ocpp`` library validates every payload with ``jsonschema`` (an interpreter walking the
schema) in a thread of the default executor: two thread hand-overs and ~0.1-0.3 ms of CPU per
message, most of the CSMS's own cost for a Heartbeat. Here each official schema (taken from
the library, so the same files) is compiled once by ``fastjsonschema`` into a Python function
and run inline, in tens of microseconds.

The library stays the judge: a payload the compiled check refuses is checked again by the
library's own validator, which raises the error the library would have raised (the right
CALLERROR code), or accepts it. The error raised says what the library's does not: the path
and the rule that failed, from the first error of the library's validator (the one it
raises), as a :class:`~csms.protocol.violations.Violation`.

A payload the compiled check accepts satisfies the same draft-4 rules the library applies
(every schema is compiled as draft 4, as the library reads them, without ``format`` checks,
as the library runs them, and without filling in defaults: the payload is left as it came).
Actions whose schemas the library reads with ``Decimal`` floats (``multipleOf`` on 1.6
charging profiles) always go to the library.
"""

from __future__ import annotations

import decimal
import threading
from collections.abc import Callable
from typing import Any

import fastjsonschema
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, MessageType, _validate_payload, get_validator

from csms.protocol import violations

DRAFT_4 = "http://json-schema.org/draft-04/schema#"
# the library validates these with Decimal floats (see ocpp.messages._validate_payload)
_LIBRARY_ONLY = {
    ("1.6", MessageType.Call, "SetChargingProfile"),
    ("1.6", MessageType.Call, "RemoteStartTransaction"),
    ("1.6", MessageType.CallResult, "GetCompositeSchedule"),
}
Check = Callable[[Any], Any]
_checks: dict[tuple[str, int, str], Check | None] = {}
_lock = threading.Lock()


def _compile(version: str, message_type: int, action: str) -> Check | None:
    if (version, message_type, action) in _LIBRARY_ONLY:
        return None
    try:
        schema = dict(get_validator(message_type, action, version).schema)
    except (OSError, ValueError):
        return None  # unknown action: the library raises the right error
    schema["$schema"] = DRAFT_4
    try:
        # as the library: no ``format`` checks, and the payload is never changed (no defaults
        # filled in); the library words the errors, so no detailed ones here
        check: Check = fastjsonschema.compile(
            schema, use_default=False, use_formats=False, detailed_exceptions=False
        )
    except fastjsonschema.JsonSchemaDefinitionException:
        return None  # a schema the compiler cannot read: the library checks it
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
    description and details that name the failing path and rule."""
    check = _check_for(version, message.message_type_id, message.action)
    if check is not None:
        try:
            check(message.payload)
            return
        except fastjsonschema.JsonSchemaException:
            pass  # the library decides
    try:
        _validate_payload(message, version)
    except OCPPError as error:
        raise _explained(error, message, version) from None


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
