"""One OCPP-J connection's RPC state, sans I/O: frames in, events and frames out.

The model is the ``websockets`` library's protocol object: :meth:`Session.receive_data`
takes a frame as read from the socket, :meth:`Session.events_received` says what it meant,
and the frames our calls and answers produce wait in :meth:`Session.data_to_send` until the
connection writes them. Nothing here awaits, sleeps or touches a socket, so every rule is a
test with plain strings.

The rules kept here:

* one CALL of ours in flight (OCPP-J: one per direction): :meth:`send_call` while one is
  pending raises :class:`~ocpp_rpc.errors.CallInFlight`; the pending CALL ends with its
  answer or with :meth:`abandon_call` (the caller gave up waiting);
* an answer is matched to the pending CALL by unique id; any other answer is dropped, with
  the reason (:class:`~ocpp_rpc.events.AnswerDropped`);
* every CALL of the peer, and every refused frame that asks for one, is answered once:
  answering anything else raises :class:`~ocpp_rpc.errors.NothingToAnswer`;
* frames above ``max_frame_bytes`` and malformed frames become
  :class:`~ocpp_rpc.events.FrameRefused` with the CALLERROR to give
  (:mod:`ocpp_rpc.frames`), spelled in the session's OCPP version.

What a CALL means (schemas, handlers, timeouts) is the caller's.
"""

from __future__ import annotations

import decimal
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ocpp.messages import Call, CallError, CallResult

from ocpp_rpc.errors import CallInFlight, NothingToAnswer
from ocpp_rpc.events import (
    AnswerDropped,
    CallReceived,
    ErrorReceived,
    Event,
    FrameRefused,
    JsonObject,
    ResultReceived,
)
from ocpp_rpc.frames import FrameError, oversized, parse_frame


class _FrameEncoder(json.JSONEncoder):
    """JSON as the ``ocpp`` library's messages write it (``to_json``): no spaces, a
    ``Decimal`` (the library reads some 1.6 numbers so) with one decimal, an object with a
    ``to_json`` (a library message in an error's details) as that. Built once: the library
    builds an encoder for every frame."""

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return float(f"{float(o):.1f}")  # as the library: rounded as a float
        to_json = getattr(o, "to_json", None)
        if to_json is None:
            return super().default(o)
        return to_json()


_encode = _FrameEncoder(separators=(",", ":")).encode


def new_unique_id() -> str:
    """A fresh unique id for a CALL of ours (a UUID4, 36 characters: OCPP-J's maximum)."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class PendingCall:
    """Our CALL in flight: the answer must carry ``unique_id``."""

    unique_id: str
    action: str


class Session:
    """The RPC state of one connection speaking OCPP ``version`` ("1.6" or "2.0.1")."""

    def __init__(
        self,
        version: str,
        *,
        max_frame_bytes: int | None = None,
        unique_ids: Callable[[], str] = new_unique_id,
    ) -> None:
        self.version = version
        self._max_frame_bytes = max_frame_bytes
        self._unique_ids = unique_ids
        self._pending: PendingCall | None = None
        self._unanswered: dict[str, int] = {}  # unique id -> answers owed (a peer may reuse one)
        self._events: list[Event] = []
        self._out: list[str] = []

    @property
    def pending(self) -> PendingCall | None:
        """Our CALL awaiting its answer, if any."""
        return self._pending

    # --- frames in ----------------------------------------------------------------------

    def receive_data(self, data: str | bytes) -> None:
        """Takes one frame as read from the socket; what it meant is in
        :meth:`events_received`."""
        if self._max_frame_bytes is not None and _too_big(data, self._max_frame_bytes):
            message: Any = oversized(data, self._max_frame_bytes)
        else:
            message = parse_frame(data)
        if isinstance(message, FrameError):
            if message.reply:
                self._owe("-1" if message.unique_id is None else message.unique_id)
            self._events.append(FrameRefused(message))
        elif isinstance(message, Call):
            self._owe(message.unique_id)
            uid, action, payload = message.unique_id, message.action, message.payload
            self._events.append(CallReceived(uid, action, payload, message))
        else:
            self._events.append(self._answered(message))

    def _answered(self, message: CallResult | CallError) -> Event:
        pending = self._pending
        if pending is None:
            return AnswerDropped(message.unique_id, "no CALL of ours is pending")
        if message.unique_id != pending.unique_id:
            return AnswerDropped(
                message.unique_id, f"our pending CALL is {pending.action} {pending.unique_id}"
            )
        self._pending = None
        if isinstance(message, CallError):
            return ErrorReceived(
                message.unique_id,
                pending.action,
                message.error_code,
                message.error_description,
                message.error_details,
            )
        return ResultReceived(message.unique_id, pending.action, message.payload)

    def events_received(self) -> list[Event]:
        """The events of the frames received since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    # --- frames out ---------------------------------------------------------------------

    def send_call(self, action: str, payload: JsonObject) -> str:
        """Our CALL; returns its unique id. Raises :class:`CallInFlight` while another of
        ours awaits its answer."""
        if self._pending is not None:
            raise CallInFlight(self._pending.unique_id, self._pending.action, action)
        unique_id = self._unique_ids()
        self._out.append(_encode([2, unique_id, action, payload]))
        self._pending = PendingCall(unique_id, action)
        return unique_id

    def abandon_call(self, unique_id: str) -> None:
        """We stopped waiting for the answer to our CALL ``unique_id`` (a timeout): the next
        CALL may go, and a late answer is dropped."""
        if self._pending is not None and self._pending.unique_id == unique_id:
            self._pending = None

    def send_result(self, unique_id: str, payload: JsonObject) -> None:
        """The CALLRESULT to the peer's CALL ``unique_id``."""
        self._settle(unique_id)
        self._out.append(_encode([3, unique_id, payload]))

    def send_error(self, unique_id: str, code: str, description: str, details: Any) -> None:
        """The CALLERROR to the peer's CALL (or refused frame) ``unique_id``; ``code`` as
        given (:meth:`refuse` spells a :class:`FrameError`'s code for the version)."""
        self._settle(unique_id)
        self._out.append(_encode([4, unique_id, code, description, details]))

    def refuse(self, error: FrameError) -> CallError:
        """The CALLERROR for a refused frame or CALL, in this version's spelling; sent only
        when ``error.reply`` (an answer is never answered). Returns it, for the log."""
        answer: CallError = error.to_call_error(self.version)
        if error.reply:
            self.send_error(
                answer.unique_id, answer.error_code, answer.error_description, answer.error_details
            )
        return answer

    def data_to_send(self) -> list[str]:
        """The frames to write, in order; each is handed out once."""
        out, self._out = self._out, []
        return out

    # --- answers owed -------------------------------------------------------------------

    def _owe(self, unique_id: str) -> None:
        self._unanswered[unique_id] = self._unanswered.get(unique_id, 0) + 1

    def _settle(self, unique_id: str) -> None:
        owed = self._unanswered.get(unique_id)
        if owed is None:
            raise NothingToAnswer(unique_id)
        if owed == 1:
            del self._unanswered[unique_id]
        else:
            self._unanswered[unique_id] = owed - 1


def _too_big(data: str | bytes, limit: int) -> bool:
    """Whether ``data`` is above ``limit`` bytes as UTF-8 (text is encoded only when its
    length in characters cannot decide: a character is 1 to 4 bytes)."""
    if isinstance(data, bytes):
        return len(data) > limit
    if len(data) > limit:
        return True
    return len(data) * 4 > limit and len(data.encode("utf-8", "surrogatepass")) > limit
