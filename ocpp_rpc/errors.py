"""What the RPC session raises: only our own mistakes.

::

    RpcError                  root of this package
    └── LocalProtocolError    we broke OCPP-J's rules (a bug of the caller, never the peer's)
        ├── CallInFlight      a second CALL of ours while the first awaits its answer
        └── NothingToAnswer   an answer to a CALL we were not sent, or answered already

The peer's mistakes never raise: a malformed frame, or an answer to no CALL of ours, is an
event (:class:`~ocpp_rpc.events.FrameRefused`, :class:`~ocpp_rpc.events.AnswerDropped`), so
that one bad frame cannot end a connection.
"""

from __future__ import annotations


class RpcError(Exception):
    """Root of the errors of :mod:`ocpp_rpc`."""


class LocalProtocolError(RpcError):
    """We broke OCPP-J's rules."""


class CallInFlight(LocalProtocolError):
    """OCPP-J allows one CALL in flight per direction: ours still awaits its answer."""

    def __init__(self, pending_id: str, pending_action: str, action: str) -> None:
        super().__init__(
            f"cannot send {action}: our {pending_action} {pending_id} awaits its answer"
        )
        self.pending_id = pending_id
        self.pending_action = pending_action
        self.action = action


class NothingToAnswer(LocalProtocolError):
    """An answer for a unique id that no CALL (or refused frame) of the peer awaits."""

    def __init__(self, unique_id: str) -> None:
        super().__init__(f"no CALL {unique_id!r} of the peer awaits an answer")
        self.unique_id = unique_id
