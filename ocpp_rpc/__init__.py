"""OCPP-J RPC without I/O, shared by the CSMS and the charger.

:class:`Session` turns frames into events and our CALLs and answers into frames, keeping the
pending-CALL table and OCPP-J's one-CALL-in-flight rule (:mod:`ocpp_rpc.session`);
:mod:`ocpp_rpc.frames` parses a frame or says what is wrong with it; :func:`on` and
:func:`routes` map actions to a connection class's handlers. Imports nothing of the project:
the ``ocpp`` library gives the message classes and schemas, and each side's connection
(``csms.protocol.base``, ``charge_point.protocol.connection``) does the socket work.
"""

from ocpp_rpc.errors import CallInFlight, LocalProtocolError, NothingToAnswer, RpcError
from ocpp_rpc.events import (
    AnswerDropped,
    CallReceived,
    ErrorReceived,
    Event,
    FrameRefused,
    ResultReceived,
)
from ocpp_rpc.frames import FrameError
from ocpp_rpc.routing import Route, on, routes
from ocpp_rpc.session import PendingCall, Session, new_unique_id

__all__ = [
    "AnswerDropped",
    "CallInFlight",
    "CallReceived",
    "ErrorReceived",
    "Event",
    "FrameError",
    "FrameRefused",
    "LocalProtocolError",
    "NothingToAnswer",
    "PendingCall",
    "ResultReceived",
    "Route",
    "RpcError",
    "Session",
    "new_unique_id",
    "on",
    "routes",
]
