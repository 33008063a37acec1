"""One OCPP-J connection of the charger: our CALLs, the CSMS's CALLs and their answers.

The RPC rules (framing, the pending CALL, one CALL in flight, answers matched by unique id)
are the :class:`~ocpp_rpc.Session`'s, shared with the CSMS; what is here is what the charger
does with them, as the ``ocpp`` library's ChargePoint did (so that any CSMS built on that
library sees the same charger): messages are the library's ``call`` / ``call_result``
dataclasses, payload keys are snake_case in Python and camelCase on the wire, and both are
checked against the library's schemas. Two things differ on purpose: a CALLERROR to our CALL
always raises (the library's OCPPError for its code, ``UnknownCallErrorCodeError`` for a code
it does not know), never a silent None; and a malformed frame of the CSMS is answered with a
CALLERROR naming what is wrong (:mod:`ocpp_rpc.frames`) instead of only being logged.

The link (:mod:`charge_point.link`) reads the socket and hands each frame to
:meth:`Connection.route_message`; the adapters (:mod:`.v16`, :mod:`.v201`) subclass this with
their ``@handles`` handlers and the CALLs the station makes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from types import ModuleType
from typing import Any, Protocol

from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.exceptions import NotSupportedError, OCPPError
from ocpp.messages import Call, CallError, CallResult, validate_payload
from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201

from charge_point.forced_answers import ForcedAnswer, ForcedAnswers
from charge_point.protocol.callerrors import NO_HANDLER, error_code
from ocpp_rpc import (
    AnswerDropped,
    CallReceived,
    ErrorReceived,
    FrameRefused,
    ResultReceived,
    Session,
    routes,
)

log = logging.getLogger(__name__)
# what the ``ocpp`` library logged (frames, the requests it refused) keeps its logger, whose
# level ``charge_point.cli`` sets
WIRE = logging.getLogger("ocpp")
_ACTIONS = {"1.6": {a.value for a in Action16}, "2.0.1": {a.value for a in Action201}}
_UNSENT = ""  # the unique id of a CALL checked before the session gives it its own
Answer = ResultReceived | ErrorReceived


class Socket(Protocol):
    """What the connection writes to (a ``websockets`` client connection)."""

    async def send(self, message: str) -> None: ...


class Connection:
    """The charger's side of one OCPP-J connection; subclasses set ``version`` and
    ``call_results`` (the library's ``call_result`` module of that version)."""

    version: str
    call_results: ModuleType
    forced: ForcedAnswers | None = None  # answers forced through the control API
    calls: ModuleType  # the library's ``call`` module of that version

    def __init__(self, charger_id: str, socket: Socket | None, *, timeout: float) -> None:
        self.id = charger_id
        self._socket = socket
        self._timeout = timeout
        self._session = Session(self.version)  # frames are bounded by the socket's max_size
        self._routes = routes(type(self))
        self._calling = asyncio.Lock()  # callers of call() wait here, one CALL in flight
        self._answer: asyncio.Future[Answer] | None = None  # of our CALL in flight

    # --- our CALLs -------------------------------------------------------------------------

    async def call(self, payload: Any) -> Any:
        """Sends the library ``call`` dataclass ``payload`` and returns the CSMS's answer as
        the matching ``call_result`` dataclass. Raises the library's OCPPError for a
        CALLERROR (or an invalid request or answer), ``UnknownCallErrorCodeError`` for a
        CALLERROR code outside OCPP, and ``TimeoutError`` when no answer comes in time."""
        action = type(payload).__name__
        camel = snake_to_camel_case(serialize_as_dict(payload))
        request = Call(_UNSENT, action, remove_nones(camel))
        await validate_payload(request, self.version)
        async with self._calling:
            # the payload as validated: the library reads some 1.6 numbers as Decimal
            unique_id = self._session.send_call(action, request.payload)
            self._answer = asyncio.get_running_loop().create_future()
            try:
                await self._flush()
                async with asyncio.timeout(self._timeout):  # wait_for may swallow a cancel
                    answered = await self._answer
            except TimeoutError:
                raise TimeoutError(
                    f"Waited {self._timeout}s for response on {action} {unique_id}."
                ) from None
            finally:
                self._answer = None
                self._session.abandon_call(unique_id)
        if isinstance(answered, ErrorReceived):
            log.debug("%s: %s answered with CALLERROR %s", self.id, action, answered.code)
            error = CallError(unique_id, answered.code, answered.description, answered.details)
            raise error.to_exception()
        response = CallResult(unique_id, answered.payload)
        response.action = action
        await validate_payload(response, self.version)
        return getattr(self.call_results, action)(**camel_to_snake_case(response.payload))

    async def send_notice(self, action: str, payload: dict[str, Any]) -> None:
        """Sends a status notification (``payload`` snake_cased) built by a job
        (:mod:`charge_point.jobs`); its answer is empty."""
        await self.call(getattr(self.calls, action)(**payload))

    # --- frames in -------------------------------------------------------------------------

    async def route_message(self, frame: str | bytes) -> None:
        """Handles one frame read from the socket: a CALL is answered, an answer goes to the
        CALL of ours waiting for it, a malformed frame is refused."""
        WIRE.info("%s: receive message %s", self.id, frame)
        self._session.receive_data(frame)
        for event in self._session.events_received():
            if isinstance(event, CallReceived):
                self._answer_call(await self._handled(event), event)
            elif isinstance(event, FrameRefused):
                answer = self._session.refuse(event.error)
                log.warning(
                    "%s: unreadable frame from the CSMS (%s): %s",
                    self.id,
                    "answered" if event.error.reply else "not answered: it was an answer",
                    answer.error_description,
                )
            elif isinstance(event, AnswerDropped):
                log.warning("%s: dropped an answer %s: %s", self.id, event.unique_id, event.reason)
            elif self._answer is not None and not self._answer.done():
                self._answer.set_result(event)
            await self._flush()

    async def _handled(self, call: CallReceived) -> CallResult | OCPPError | Exception:
        """The answer to the CSMS's CALL: what its handler returned, checked, or the error
        that stands in its place."""
        route = self._routes.get(call.action)
        msg = call.as_call()
        forced = None if self.forced is None else self.forced.take(call.action)
        if forced is not None:
            return await self._forced(msg, forced)
        try:
            if route is None:
                raise _no_handler(call.action, self.version)
            if route.validated:
                await validate_payload(msg, self.version)
            kwargs = camel_to_snake_case(msg.payload)
            if route.wants_unique_id:
                kwargs["call_unique_id"] = call.unique_id
            response = route.function(self, **kwargs)
            if inspect.isawaitable(response):
                response = await response
            result = msg.create_call_result(
                snake_to_camel_case(remove_nones(serialize_as_dict(response)))
            )
            if route.validated:
                await validate_payload(result, self.version)
        except Exception as exc:  # answered with a CALLERROR: OCPPError's code, else Internal
            self._log_refusal(msg, exc)
            return exc
        return result

    async def _forced(self, msg: Call, forced: ForcedAnswer) -> CallResult | OCPPError:
        """The answer forced through the control API, instead of the handler's."""
        answer = forced.error or forced.status
        log.info("%s: %s answered as forced: %s", self.id, msg.action, answer)
        if forced.error is not None:
            return forced.exception()
        result = msg.create_call_result({"status": forced.status})
        await validate_payload(result, self.version)  # checked when it was forced, too
        return result

    def _answer_call(self, answer: CallResult | Exception, call: CallReceived) -> None:
        if isinstance(answer, CallResult):
            self._session.send_result(call.unique_id, answer.payload)
            return
        error = call.as_call().create_call_error(answer)
        self._session.send_error(
            error.unique_id, error.error_code, error.error_description, error.error_details
        )

    def _log_refusal(self, msg: Call, exc: Exception) -> None:
        """A request this charger does not offer is one warning; anything else (a handler
        failing, a request that breaks its schema) an error with its traceback."""
        if isinstance(exc, OCPPError) and error_code(exc) in NO_HANDLER:
            WIRE.warning(
                "%s: the CSMS sent %s, which this charger does not implement: "
                "answered with a %s CALLERROR",
                self.id,
                msg.action,
                error_code(exc),
            )
            return
        WIRE.error("%s: error while handling request '%s'", self.id, msg, exc_info=exc)

    async def _flush(self) -> None:
        socket = self._socket
        for frame in self._session.data_to_send():
            WIRE.info("%s: send %s", self.id, frame)
            assert socket is not None, "a connection without a socket sends nothing"
            await socket.send(frame)


def _no_handler(action: str, version: str) -> OCPPError:
    """The library's answer to a CALL without a handler: NotImplemented for an action of the
    version, NotSupported for any other name."""
    if action in _ACTIONS.get(version, set()):
        return OcppNotImplemented(details={"cause": f"No handler for {action} registered."})
    return NotSupportedError(details={"cause": f"{action} not supported by OCPP{version}."})
