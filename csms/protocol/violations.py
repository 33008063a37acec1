"""What exactly is wrong with a frame or a payload, as a CALLERROR's description and details.

OCPP-J leaves ``errorDetails`` free (any JSON object; ``{}`` when there is nothing to say) and
2.0.1 limits ``errorDescription`` to 255 characters. A :class:`Violation` names the place and
the rule that failed, and says both ways:

* a payload: ``{"action": "Authorize", "path": "idToken.type", "constraint": "enum",
  "detail": "'Nope' is not one of ..."}`` (``path`` dotted, list items as ``[i]``;
  ``constraint`` the JSON-schema keyword: type, required, additionalProperties, enum,
  maxLength, minItems, maxItems, minimum, maximum, multipleOf, or ``format`` for a date-time
  the CSMS cannot read);
* the frame itself: ``{"element": 0, "constraint": "messageTypeId", "detail": ...}`` (or
  ``json``, ``utf8``, ``array``, ``depth``, ``uniqueId``, ``length``, ``action`` (also an
  action name the version does not have or this CSMS does not handle), ``payload``,
  ``maxFrameBytes``);
* a CALL the charger may not send: ``{"action", "constraint": "registration", "detail"}``.

Whatever the charger sent is echoed only in part: a value at most :data:`VALUE_MAX`
characters, and never the text of a string that broke a length rule (it may be anything: a
certificate, a secret typed into the wrong field). :class:`~ocpp_rpc.violations.Violation`
itself is shared with the charger (:mod:`ocpp_rpc`); what is here is the CSMS's: schema
errors, unknown actions, date-times and the details fit to echo. Pure: no I/O, no logging.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaError
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.exceptions import NotSupportedError, OCPPError, TypeConstraintViolationError
from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201

from ocpp_rpc.violations import DETAIL_MAX, Violation, cut, json_type, short
from qr_extension.wire import parse_ocpp_timestamp

_DETAIL_KEYS = ("action", "path", "element", "constraint", "detail")
_ACTIONS = {"1.6": {a.value for a in Action16}, "2.0.1": {a.value for a in Action201}}


def json_path(parts: Iterable[str | int]) -> str:
    """``["meterValue", 0, "timestamp"]`` -> ``meterValue[0].timestamp``."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{cut(part, 50)}" if path else cut(part, 50)
    return path


def from_schema_error(error: SchemaError, action: str | None = None) -> Violation:
    """The violation that a ``jsonschema`` error reports, with the path to the failing
    member (for ``required`` and ``additionalProperties``, the member missing or unexpected)."""
    parts: list[str | int] = list(error.absolute_path)
    keyword = str(error.validator)
    rule: Any = error.validator_value
    value = error.instance
    if keyword == "required" and isinstance(value, Mapping):
        missing = [name for name in rule if name not in value]
        parts.append(missing[0] if missing else "?")
        detail = "required member is missing"
    elif keyword == "additionalProperties" and isinstance(value, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = schema.get("properties", {})
        extra = sorted(str(name) for name in value if name not in allowed)
        parts.append(extra[0] if extra else "?")
        detail = "member not allowed here"
        if len(extra) > 1:
            detail += f" (and {len(extra) - 1} more)"
    elif keyword == "type":
        expected = " or ".join(rule) if isinstance(rule, list) else str(rule)
        detail = f"expected {expected}, got {json_type(value)}"
    elif keyword == "enum":
        detail = f"{short(value)} is not one of {cut(json.dumps(list(rule)), DETAIL_MAX // 2)}"
    elif keyword in ("maxLength", "minLength"):  # the text itself is never echoed
        detail = f"{len(value)} characters, {keyword} {rule}"
    elif keyword in ("maxItems", "minItems"):
        detail = f"{len(value)} items, {keyword} {rule}"
    elif keyword in ("maximum", "minimum", "multipleOf"):
        detail = f"{short(value)} breaks {keyword} {rule}"
    else:
        detail = f"breaks {keyword} {short(rule)}"
    return Violation(keyword, detail, path=json_path(parts), action=action)


def unknown_action(action: str, version: str) -> OCPPError:
    """NotImplemented for an action of ``version`` this CSMS does not handle, NotSupported for
    a name that ``version`` does not have."""
    if action in _ACTIONS.get(version, set()):
        violation = Violation("action", "no handler for this action in this CSMS", action=action)
        return OcppNotImplemented(f"{cut(action, 50)}: not implemented", violation.details())
    violation = Violation("action", f"not an OCPP {version} action", action=action)
    return NotSupportedError(f"{cut(action, 50)}: {violation.detail}", violation.details())


def timestamp(text: str, *, action: str, path: str = "timestamp") -> datetime:
    """``text``, a date-time member of ``action``'s payload, as aware UTC.

    Neither the library nor :mod:`csms.protocol.fast_schema` checks the schemas' ``format:
    date-time``; a handler that needs the time reads it here, so that anything else is a
    TypeConstraintViolation naming the member (the charger's fault), never an InternalError."""
    try:
        return parse_ocpp_timestamp(text)
    except ValueError:
        violation = Violation(
            "format", f"{short(text)} is not a date-time", path=path, action=action
        )
        raise TypeConstraintViolationError(violation.description(), violation.details()) from None


def safe_details(details: object) -> dict[str, Any]:
    """The members of ``details`` fit to send back: the keys of a :class:`Violation`, JSON
    scalars, strings cut (the library's own details carry whole payloads and objects)."""
    if not isinstance(details, Mapping):
        return {}
    kept: dict[str, Any] = {}
    for key in _DETAIL_KEYS:
        value = details.get(key)
        if isinstance(value, str):
            kept[key] = cut(value, DETAIL_MAX)
        elif isinstance(value, int) and not isinstance(value, bool):
            kept[key] = value
    return kept
