"""What a received frame means, as one event each (:meth:`Session.events_received`).

Frozen values; the payloads are the JSON objects as they came (camelCase keys).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ocpp.messages import Call

from ocpp_rpc.frames import FrameError

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallReceived:
    """The peer's CALL: answer it with ``send_result`` or ``send_error``. ``message`` is the
    same CALL as the ``ocpp`` library's ``Call`` (what its schema checks take), as parsed."""

    unique_id: str
    action: str
    payload: JsonObject
    message: Call | None = field(default=None, compare=False, repr=False)

    def as_call(self) -> Call:
        """The CALL as the library's ``Call`` (the parsed one when there is one)."""
        if self.message is not None:
            return self.message
        return Call(self.unique_id, self.action, self.payload)


@dataclass(frozen=True, slots=True)
class ResultReceived:
    """The CALLRESULT to our pending CALL ``action``."""

    unique_id: str
    action: str
    payload: JsonObject


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """The CALLERROR to our pending CALL ``action``."""

    unique_id: str
    action: str
    code: str
    description: str
    details: Any


@dataclass(frozen=True, slots=True)
class FrameRefused:
    """A frame that could not be read; answer it with ``refuse`` when ``error.reply``
    (a broken answer gets no answer)."""

    error: FrameError


@dataclass(frozen=True, slots=True)
class AnswerDropped:
    """A CALLRESULT or CALLERROR to no CALL of ours that is pending (late, after a timeout,
    or never sent): dropped, for the reason given."""

    unique_id: str
    reason: str


Event: TypeAlias = CallReceived | ResultReceived | ErrorReceived | FrameRefused | AnswerDropped
