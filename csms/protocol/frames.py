"""Parsing OCPP-J frames, sans I/O: text in, a message or the CALLERROR to answer out.

The ``ocpp`` library only logs a frame it cannot unpack and answers nothing; the charger
then waits for its timeout. Here every malformed frame that carries a usable unique id gets a
CALLERROR with the code of its version (1.6 spells ``FormationViolation`` and
``OccurenceConstraintViolation``; 2.0.1 ``FormatViolation``, ``OccurrenceConstraintViolation``
and has ``RpcFrameworkError`` / ``MessageTypeNotSupported``), and the connection stays up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeAlias

from ocpp.messages import Call, CallError, CallResult

UNIQUE_ID_MAX = 36
_UNIQUE_ID_PREFIX = re.compile(r'^\s*\[\s*\d+\s*,\s*"([^"\\]{1,36})"')

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
    """A frame that cannot be processed; ``unique_id`` is ``None`` when none could be read."""

    unique_id: str | None
    code: str
    description: str
    reply: bool = True  # False for a broken CALLRESULT/CALLERROR: answers get no answer

    def to_call_error(self, version: str) -> CallError:
        # 2.0.1 (4.2.3): without a readable id, answer with "-1".
        return CallError(
            self.unique_id if self.unique_id is not None else "-1",
            error_code_for(version, self.code),
            self.description,
            {},
        )


# ocpp.messages.Call | CallResult | CallError; the library has no type hints.
Message: TypeAlias = Any


def sniff_unique_id(text: str) -> str | None:
    """The unique id of a frame without parsing all of it (for oversized frames)."""
    match = _UNIQUE_ID_PREFIX.match(text[:128])
    return match.group(1) if match else None


def parse_frame(text: str | bytes) -> Message | FrameError:
    """One OCPP-J frame -> a Call, CallResult or CallError, or the error to answer."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return FrameError(None, "RpcFrameworkError", "frame is not UTF-8 text")
    try:
        frame: Any = json.loads(text)
    except ValueError:
        return FrameError(sniff_unique_id(text), "RpcFrameworkError", "frame is not valid JSON")
    if not isinstance(frame, list) or not frame:
        return FrameError(None, "RpcFrameworkError", "frame is not a JSON array")
    uid = frame[1] if len(frame) > 1 and isinstance(frame[1], str) else None
    if uid is not None and not 0 < len(uid) <= UNIQUE_ID_MAX:
        return FrameError(None, "RpcFrameworkError", "unique id must be 1-36 characters")
    kind = frame[0]
    if kind not in (2, 3, 4) or isinstance(kind, bool):
        return FrameError(uid, "MessageTypeNotSupported", f"message type id {kind!r} unknown")
    if uid is None:
        return FrameError(None, "RpcFrameworkError", "unique id missing or not a string")
    if kind == 2:
        if len(frame) != 4 or not isinstance(frame[2], str):
            return FrameError(uid, "FormatViolation", "a CALL is [2, id, action, payload]")
        if not isinstance(frame[3], dict):
            return FrameError(uid, "FormatViolation", "a CALL payload must be a JSON object")
        return Call(uid, frame[2], frame[3])
    if kind == 3:
        if len(frame) != 3 or not isinstance(frame[2], dict):
            return FrameError(uid, "FormatViolation", "a CALLRESULT is [3, id, payload]", False)
        return CallResult(uid, frame[2])
    if len(frame) != 5 or not isinstance(frame[2], str):
        return FrameError(
            uid, "FormatViolation", "CALLERROR is [4, id, code, text, details]", False
        )
    return CallError(uid, frame[2], frame[3], frame[4])
