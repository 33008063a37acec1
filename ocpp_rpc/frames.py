"""Parsing OCPP-J frames, sans I/O: text in, a message or the CALLERROR to answer out.

The ``ocpp`` library only logs a frame it cannot unpack and answers nothing; the peer then
waits for its timeout. Here every malformed frame that carries a usable unique id gets a
CALLERROR with the code of its version (1.6 spells ``FormationViolation`` and
``OccurenceConstraintViolation``; 2.0.1 ``FormatViolation``, ``OccurrenceConstraintViolation``
and has ``RpcFrameworkError`` / ``MessageTypeNotSupported``), whose description and details
name the element and the rule that failed (:mod:`ocpp_rpc.violations`), and the
connection stays up. Things Python's JSON parser would take are refused: ``NaN`` and
``Infinity`` (not JSON), a number beyond a double's range (``1e999``, which Python reads as
infinity) or an integer too long for Python to read (4,300 digits), a frame nested deeper than
:data:`MAX_DEPTH` (the parser and the code after it recurse, and a few thousand levels exhaust
the interpreter's stack), and strings that are no text the CSMS can keep: a lone surrogate,
or NUL (``\\u0000``, which PostgreSQL text cannot hold).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ocpp.messages import Call, CallError, CallResult

from ocpp_rpc.violations import Violation, cut, json_type, short

UNIQUE_ID_MAX = 36
DESCRIPTION_MAX = 255
# Nesting of a frame, its array included: the deepest OCPP message (a 2.0.1 charging
# schedule) is about 6 levels; anything far deeper is refused before it reaches code that
# recurses into it (the JSON parser itself, key conversion, validation, logging).
MAX_DEPTH = 32
_KINDS = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}
_LENGTHS = {2: 4, 3: 3, 4: 5}
_SHAPES = {
    2: "[2, uniqueId, action, payload]",
    3: "[3, uniqueId, payload]",
    4: "[4, uniqueId, errorCode, errorDescription, errorDetails]",
}
_UNIQUE_ID_PREFIX = re.compile(r'^\s*\[\s*\d+\s*,\s*"([^"\\]{1,36})"')
_NOT_A_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[^\[\]{}"]+')  # a string, or no bracket

_V16_NAMES = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
    "RpcFrameworkError": "FormationViolation",
    "MessageTypeNotSupported": "ProtocolError",
}
_V201_NAMES = {
    "FormationViolation": "FormatViolation",
    "OccurenceConstraintViolation": "OccurrenceConstraintViolation",
}


def error_code_for(version: str, code: str) -> str:
    """The spelling of a CALLERROR code in OCPP ``version`` ("1.6" or "2.0.1")."""
    table = _V16_NAMES if version == "1.6" else _V201_NAMES
    return table.get(code, code)


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame that cannot be processed; ``unique_id`` is ``None`` when none could be read.

    ``details`` is the CALLERROR's ``errorDetails`` (a :meth:`Violation.details`)."""

    unique_id: str | None
    code: str
    description: str
    reply: bool = True  # False for a broken CALLRESULT/CALLERROR: answers get no answer
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, unique_id: str | None, code: str, violation: Violation, reply: bool = True
    ) -> FrameError:
        return cls(unique_id, code, violation.description(), reply, violation.details())

    def to_call_error(self, version: str) -> CallError:
        # 2.0.1 (4.2.3): without a readable id, answer with "-1".
        return CallError(
            self.unique_id if self.unique_id is not None else "-1",
            error_code_for(version, self.code),
            cut(self.description, DESCRIPTION_MAX),
            dict(self.details),
        )


# ocpp.messages.Call | CallResult | CallError; the library has no type hints.
Message: TypeAlias = Any


def sniff_unique_id(text: str) -> str | None:
    """The unique id of a frame without parsing all of it (for oversized frames)."""
    match = _UNIQUE_ID_PREFIX.match(text[:128])
    return match.group(1) if match else None


def oversized(text: str | bytes, limit: int) -> FrameError:
    """The error for a frame above ``limit`` bytes (its unique id read from its head)."""
    size = len(text.encode() if isinstance(text, str) else text)
    uid = sniff_unique_id(text) if isinstance(text, str) else None
    return FrameError.of(
        uid, "FormatViolation", Violation("maxFrameBytes", f"{size} bytes, above {limit}")
    )


class _NotJson(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity``: Python's parser takes them, JSON has none."""


def _not_json(constant: str) -> Any:
    raise _NotJson(constant)


class _TooLarge(ValueError):
    """A number literal beyond a double's range: Python's parser reads it as infinity."""


def _finite(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _TooLarge(literal)
    return value


# one for all: building one costs
_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)


def _too_deep(text: str) -> Violation | None:
    """The violation of a frame nested deeper than :data:`MAX_DEPTH` (None when it is not).

    Counting brackets bounds the depth at C speed, so only a frame with more than
    ``MAX_DEPTH`` of them is measured: its strings and everything but brackets are dropped
    by one regular expression, and the depth is counted over the brackets left."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    depth = 0
    for char in _NOT_A_BRACKET.sub("", text):
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return Violation("depth", f"nested deeper than {MAX_DEPTH} levels")
        elif char in "]}":
            depth -= 1
    return None


def _lone_surrogate(value: Any) -> bool:
    """Whether decoded JSON holds a lone surrogate (``"\\ud800"``): valid JSON, but no text
    that UTF-8 (the socket, the store, the log) can carry."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _holds_nul(value: Any) -> bool:
    """Whether decoded JSON holds the character NUL (``"\\u0000"``) in a string or a key:
    valid JSON, but no text PostgreSQL can store or be asked about (its driver refuses it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any("\x00" in key or _holds_nul(item) for key, item in value.items())
    return False


def _not_text(frame: list[Any], violation: Violation) -> FrameError:
    """The error for a frame with a string that is no text (``violation``): nothing of it is
    echoed, its unique id is used when that is clean text, and it is answered unless it is an
    answer."""
    uid = frame[1] if len(frame) > 1 else None
    if (
        not isinstance(uid, str)
        or not 0 < len(uid) <= UNIQUE_ID_MAX
        or _lone_surrogate(uid)
        or "\x00" in uid
    ):
        uid = None
    is_answer = frame[0] in (3, 4) and not isinstance(frame[0], bool)
    return FrameError.of(uid, "RpcFrameworkError", violation, reply=uid is None or not is_answer)


def parse_frame(text: str | bytes) -> Message | FrameError:
    """One OCPP-J frame -> a Call, CallResult or CallError, or the error to answer."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            return FrameError.of(
                None, "RpcFrameworkError", Violation("utf8", f"not UTF-8 text: {exc.reason}")
            )
    too_deep = _too_deep(text)
    if too_deep is not None:
        return FrameError.of(sniff_unique_id(text), "FormatViolation", too_deep)
    try:
        frame: Any = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        violation = Violation("json", f"not valid JSON: {exc.msg} at character {exc.pos}")
        return FrameError.of(sniff_unique_id(text), "RpcFrameworkError", violation)
    except _NotJson as exc:
        violation = Violation("json", f"not valid JSON: {exc} is not a JSON number")
        return FrameError.of(sniff_unique_id(text), "RpcFrameworkError", violation)
    except _TooLarge as exc:
        violation = Violation("number", f"{cut(str(exc), 40)} is beyond a double's range")
        return FrameError.of(sniff_unique_id(text), "FormatViolation", violation)
    except ValueError:  # the only other: an integer longer than Python converts
        limit = sys.get_int_max_str_digits()
        violation = Violation("number", f"an integer of more than {limit:,} digits")
        return FrameError.of(sniff_unique_id(text), "FormatViolation", violation)
    if not isinstance(frame, list) or not frame:
        got = "an empty array" if frame == [] else f"a JSON {json_type(frame)}"
        violation = Violation("array", f"a frame is a non-empty JSON array, got {got}")
        return FrameError.of(None, "RpcFrameworkError", violation)
    if "\\u" in text:  # only an escape can spell a lone surrogate or a NUL
        if _lone_surrogate(frame):
            violation = Violation("utf8", "a string holds a lone surrogate: not Unicode text")
            return _not_text(frame, violation)
        if "\\u0000" in text and _holds_nul(frame):
            violation = Violation("nul", "a string holds NUL (\\u0000): no text the CSMS keeps")
            return _not_text(frame, violation)
    uid = frame[1] if len(frame) > 1 and isinstance(frame[1], str) else None
    if uid is not None and not 0 < len(uid) <= UNIQUE_ID_MAX:
        violation = Violation(
            "uniqueId", f"{len(uid)} characters, must be 1-{UNIQUE_ID_MAX}", element=1
        )
        return FrameError.of(None, "RpcFrameworkError", violation)
    kind = frame[0]
    if kind not in _KINDS or isinstance(kind, bool):
        violation = Violation(
            "messageTypeId", f"{short(kind)} is not 2 (CALL), 3 (CALLRESULT) or 4", element=0
        )
        return FrameError.of(uid, "MessageTypeNotSupported", violation)
    if uid is None:
        got = json_type(frame[1]) if len(frame) > 1 else "nothing"
        violation = Violation("uniqueId", f"expected a string, got {got}", element=1)
        return FrameError.of(None, "RpcFrameworkError", violation)
    reply = kind == 2  # answers get no answer
    if len(frame) != _LENGTHS[kind]:
        violation = Violation(
            "length", f"a {_KINDS[kind]} is {_SHAPES[kind]}, got {len(frame)} elements"
        )
        return FrameError.of(uid, "FormatViolation", violation, reply)
    if kind in (2, 4) and not isinstance(frame[2], str):
        name = "action" if kind == 2 else "errorCode"
        violation = Violation(name, f"expected a string, got {json_type(frame[2])}", element=2)
        return FrameError.of(uid, "FormatViolation", violation, reply)
    if kind == 4:  # a CALLERROR is taken as it comes: its details are free
        return CallError(uid, frame[2], frame[3], frame[4])
    payload_at = _LENGTHS[kind] - 1
    if not isinstance(frame[payload_at], dict):
        violation = Violation(
            "payload",
            f"expected a JSON object, got {json_type(frame[payload_at])}",
            element=payload_at,
        )
        return FrameError.of(uid, "FormatViolation", violation, reply)
    if kind == 2:
        return Call(uid, frame[2], frame[3])
    return CallResult(uid, frame[2])
