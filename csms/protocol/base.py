"""What 1.6 and 2.0.1 connections share: handler routing, CALLERRORs, the outgoing-call path.

A :class:`CsmsChargePoint` is the connection side of one charger's OCPP-J session: the
:class:`~ocpp_rpc.Session` (pure: frames in, events and frames out, the pending CALL) says
what each frame means, and this class decides what to answer, runs the handlers and writes
the frames it is given to the transport. The endpoint owns the two tasks: a reader that
hands each received frame to :meth:`CsmsChargePoint.route_message`, one at a time, and
:meth:`CsmsChargePoint.run_outbox`, which sends the CSMS's own CALLs one at a time from a
bounded queue. Handlers never await a CALL: they :meth:`defer` it, and it is queued once
their answer has been sent.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, Protocol, TypeVar

from ocpp.exceptions import InternalError, OCPPError, SecurityError
from ocpp.messages import Call, CallResult

from config.logs import bind
from csms import metrics
from csms.errors import (
    ChargerBusy,
    CommandRejected,
    CommandTimeout,
    ConnectionEnded,
    NotConnected,
)
from csms.protocol import fast_schema, violations
from csms.protocol.deadline import CallDeadline
from csms.protocol.naming import to_camel, to_snake
from csms.protocol.registration import ACCEPTED, BOOT, REJECTED, Registration
from csms.waitqueue import WaitQueue
from ocpp_rpc import (
    AnswerDropped,
    CallReceived,
    ErrorReceived,
    FrameRefused,
    ResultReceived,
    Session,
    routing,
)
from ocpp_rpc.frames import FrameError, error_code_for
from ocpp_rpc.violations import cut

LOG = logging.getLogger("csms.protocol")
# frames sent keep the logger the ``ocpp`` library logged them with, so that the log
# settings that quieten it (demo, charger) still apply
FRAMES = logging.getLogger("ocpp")
OUTBOX_SIZE = 16  # commands waiting per connection; more is ChargerBusy, never an unbounded queue
# An incoming CALL is answered within this time, with CALLERROR InternalError if its handler
# (usually the store) has not finished: chargers time out their CALLs at 30-60 s and would
# otherwise see silence and retry into the same congestion.
HANDLER_DEADLINE_S = 20.0
_UNSENT = ""  # the unique id of a CALL checked before the session gives it its own

JsonObject = dict[str, Any]
Handler = TypeVar("Handler", bound=Callable[..., Any])
Answer = ResultReceived | ErrorReceived


def _asked(action: str, unique_id: str) -> str:
    """A CALL as the log names it: its action (cut: a peer may send any string) and id."""
    return f"{cut(str(action), 50)} {unique_id}"


def on(action: str) -> Callable[[Handler], Handler]:
    """Marks a method as the handler of the charger's CALL ``action``
    (:func:`ocpp_rpc.routing.on`: a table per class, no module-level registry)."""
    return routing.on(action)


class Transport(Protocol):
    """The socket side: text frames in and out (``recv`` and ``send`` raise
    :class:`~csms.errors.ConnectionEnded` when the peer is gone)."""

    async def recv(self) -> str: ...

    async def send(self, message: str) -> None: ...

    async def close(self, reason: str) -> None: ...


@dataclass(slots=True)
class _Outgoing:
    action: str
    payload: JsonObject
    future: asyncio.Future[JsonObject] | None = field(default=None)


class CsmsChargePoint:
    """One charger's connection: our handlers (``@on``), framing, error mapping, outgoing
    queue and the charger's registration (:mod:`csms.protocol.registration`), which decides
    what it may send: ``registration`` is the one stored for it when the connection opens."""

    _ocpp_version: str

    def __init__(
        self,
        charger_id: str,
        transport: Transport,
        *,
        response_timeout_s: float,
        max_frame_bytes: int,
        handler_deadline_s: float = HANDLER_DEADLINE_S,
        registration: str = ACCEPTED,
    ) -> None:
        self.id = charger_id
        self.registration = Registration(registration)
        self._transport = transport
        self._session = Session(self._ocpp_version, max_frame_bytes=max_frame_bytes)
        self._routes = routing.routes(type(self))
        self._response_timeout_s = response_timeout_s
        self._handler_deadline_s = handler_deadline_s
        self._deadline = CallDeadline(handler_deadline_s)
        self._outbox: WaitQueue[_Outgoing] = WaitQueue(OUTBOX_SIZE)
        self._deferred: list[_Outgoing] = []
        self._calling = asyncio.Lock()  # callers of call_raw wait here, one CALL in flight
        self._answer: asyncio.Future[Answer] | None = None  # of our CALL in flight
        self._refused_with: str | None = None  # the CALLERROR code given to the current CALL

    @property
    def charger_id(self) -> str:
        return str(self.id)

    @property
    def ocpp_version(self) -> str:
        return self._ocpp_version

    @property
    def accepted(self) -> bool:
        """Whether the charger may work (and be sent our keys) on this connection."""
        return self.registration.accepted

    async def close(self, reason: str) -> None:
        """Closes the socket (a newer connection replaced this one, or shutdown)."""
        await self._transport.close(reason)

    # --- registration -----------------------------------------------------------------------

    def booted(self, status: str) -> None:
        """The answer to the charger's BootNotification is ``status``."""
        self.registration = self.registration.booted(status)

    def registration_decided(self, registration: str) -> None:
        """The operator set the charger's registration while it is connected. Acceptance is
        taken away at once; the charger learns its registration from the answer to its next
        boot, which it is asked for now (TriggerMessage), unless it was told it is Rejected
        (a rejected charger is not spoken to: 2.0.1 B03.FR.03)."""
        before = self.registration
        self.registration = before.decided(registration)
        if before.state == REJECTED or registration == before.state:
            return
        LOG.info("%s: registration set to %s; asking it to boot again", self.id, registration)
        try:
            self.post("TriggerMessage", {"requestedMessage": BOOT})
        except ChargerBusy:
            LOG.warning("%s: outbox full, no TriggerMessage BootNotification", self.id)

    # --- incoming ---------------------------------------------------------------------------

    async def route_message(self, raw_msg: str) -> None:
        """Handles one frame read from the socket: a CALL is answered (its deferred CALLs
        queued after), an answer goes to the CALL of ours waiting for it, a malformed frame
        is refused."""
        self._session.receive_data(raw_msg)
        for event in self._session.events_received():
            if isinstance(event, CallReceived):
                await self._call_received(event)
            elif isinstance(event, FrameRefused):
                await self._frame_refused(event.error)
            elif isinstance(event, AnswerDropped):
                uid = event.unique_id
                LOG.warning("%s: dropped an answer to no pending call: %s", self.id, uid)
            elif self._answer is not None and not self._answer.done():
                self._answer.set_result(event)

    async def _call_received(self, call: CallReceived) -> None:
        try:
            try:
                txn = _transaction_of(call.payload)
                if txn is None:  # most messages: no binding to pay for
                    await self._answer_call(call)
                else:
                    with bind(txn=txn):
                        await self._answer_call(call)
            finally:
                self._flush_deferred()
        except ConnectionEnded:
            LOG.info(
                "%s: left before the answer to %s was sent; nothing more is sent",
                self.id,
                _asked(call.action, call.unique_id),
            )
            raise

    async def _frame_refused(self, error: FrameError) -> None:
        try:
            self._reply_error(error, "a malformed frame")
            await self._flush()
        except ConnectionEnded:
            LOG.info(
                "%s: left before the answer to a bad frame was sent; nothing more is sent", self.id
            )
            raise

    async def _answer_call(self, call: CallReceived) -> None:
        """Every CALL gets a CALLRESULT or a CALLERROR, whatever fails and however slowly.

        The deadline (:class:`~csms.protocol.deadline.CallDeadline`: one timer per
        connection, not one per CALL) covers the handler and the checks of its answer, not
        the socket. An OCPPError (a schema violation, an unknown action) is answered with its
        description and the details fit to send back
        (:func:`~csms.protocol.violations.safe_details`)."""
        asked = _asked(call.action, call.unique_id)
        started, self._refused_with = time.perf_counter(), None
        deadline = self._deadline
        try:
            try:
                own = deadline.start()
                try:
                    if own:
                        await self._handle_call(call)
                    else:  # a CALL of this connection handled meanwhile (not from read_frames)
                        async with asyncio.timeout(self._handler_deadline_s):
                            await self._handle_call(call)
                except asyncio.CancelledError:
                    if own and deadline.passed():
                        raise TimeoutError from None
                    raise
                finally:
                    if own:
                        deadline.stop()
            except ConnectionEnded:
                raise  # nobody left to answer
            except OCPPError as error:
                details = violations.safe_details(error.details)
                self._reply_error(
                    FrameError(call.unique_id, error.code, error.description, details=details),
                    asked,
                )
            except TimeoutError:
                LOG.warning(
                    "%s: %s not handled in %ss", self.id, call.action, self._handler_deadline_s
                )
                self._reply_error(
                    FrameError(call.unique_id, "InternalError", "the CSMS did not finish in time"),
                    asked,
                )
            except Exception:
                LOG.exception("%s: failed to handle %s", self.id, call.action)
                self._reply_error(
                    FrameError(call.unique_id, "InternalError", "an unexpected error occurred"),
                    asked,
                )
            for frame in self._session.data_to_send():  # as _flush, one coroutine fewer
                await self._transport.send(frame)
                FRAMES.info("%s: send %s", self.id, frame)
        finally:
            action = call.action if call.action in self._routes else "unknown"
            outcome = self._refused_with or "result"
            metrics.call_received(action, outcome, time.perf_counter() - started)

    async def _handle_call(self, call: CallReceived) -> None:
        """Runs the CALL's handler and puts its answer in the session: schemas are checked
        inline by compiled validators (:mod:`csms.protocol.fast_schema`), key conversions
        are memoised (:mod:`csms.protocol.naming`), and each class's routes are read once
        (:func:`ocpp_rpc.routing.routes`). Before all that, a charger that is not accepted
        may send only what its registration allows: anything else is a SecurityError,
        however malformed."""
        if self.registration.state != ACCEPTED:
            refusal = self.registration.refusal(call.action)
            if refusal is not None:
                raise SecurityError(refusal.description(), refusal.details())
        route = self._routes.get(call.action)
        if route is None:
            raise violations.unknown_action(call.action, self._ocpp_version)
        msg = call.as_call()
        if route.validated:
            fast_schema.validate(msg, self._ocpp_version)
        kwargs = to_snake(msg.payload)
        if route.wants_unique_id:
            kwargs["call_unique_id"] = call.unique_id
        try:
            response = route.function(self, **kwargs)
            if inspect.isawaitable(response):
                response = await response
        except OCPPError:
            raise  # answered with details fit to send back
        except Exception as exc:  # a handler's failure: InternalError, as the library answers
            FRAMES.exception("Error while handling request '%s'", msg)
            error = msg.create_call_error(exc)
            self._refused_with = error.error_code
            metrics.callerror_sent(error.error_code)
            self._session.send_error(
                error.unique_id, error.error_code, error.error_description, error.error_details
            )
            return
        result = msg.create_call_result(to_camel(plain(response)))
        if route.validated:
            try:
                fast_schema.validate(result, self._ocpp_version)
            except OCPPError as error:  # our fault, not the charger's
                LOG.error("%s: our answer to %s is invalid: %s", self.id, call.action, error)
                raise InternalError("the CSMS's answer was invalid") from None
        self._session.send_result(call.unique_id, result.payload)

    def _reply_error(self, error: FrameError, asked: str) -> None:
        """Logs what was refused and why (the same words the charger gets), and answers it
        unless it was itself an answer."""
        answer = self._session.refuse(error)
        LOG.info(
            "%s: %s %s to %s: %s %s",
            self.id,
            "CALLERROR" if error.reply else "dropped, no CALLERROR to an answer:",
            answer.error_code,
            asked,
            answer.error_description,
            json.dumps(answer.error_details, ensure_ascii=False),
        )
        if error.reply:
            self._refused_with = answer.error_code
            metrics.callerror_sent(answer.error_code)

    async def _flush(self) -> None:
        """Writes the frames the session has for the peer; each is logged once it was sent."""
        for frame in self._session.data_to_send():
            await self._transport.send(frame)
            FRAMES.info("%s: send %s", self.id, frame)

    # --- outgoing ---------------------------------------------------------------------------

    def defer(self, action: str, payload: JsonObject) -> None:
        """Queues a CALL to be sent after the answer to the current incoming message."""
        self._deferred.append(_Outgoing(action, payload))

    def _flush_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for item in deferred:
            try:
                self._outbox.put_nowait(item)
            except asyncio.QueueFull:
                LOG.warning("%s: outbox full, dropped %s", self.id, item.action)

    def post(self, action: str, payload: JsonObject) -> None:
        try:
            self._outbox.put_nowait(_Outgoing(action, payload))
        except asyncio.QueueFull as exc:
            raise ChargerBusy(f"{self.id}: {OUTBOX_SIZE} commands already waiting") from exc

    async def request(self, action: str, payload: JsonObject, *, timeout_s: float) -> JsonObject:
        loop = asyncio.get_running_loop()
        item = _Outgoing(action, payload, loop.create_future())
        try:
            self._outbox.put_nowait(item)
        except asyncio.QueueFull as exc:
            raise ChargerBusy(f"{self.id}: {OUTBOX_SIZE} commands already waiting") from exc
        assert item.future is not None
        try:
            # queueing behind other commands counts against the same budget
            async with asyncio.timeout(timeout_s):  # wait_for may swallow a cancel (3.11)
                return await asyncio.shield(item.future)
        except TimeoutError as exc:
            item.future.cancel()
            raise CommandTimeout(f"{self.id}: no answer to {action} in {timeout_s}s") from exc

    async def run_outbox(self) -> None:
        """Sends queued CALLs one at a time (OCPP-J allows one in flight per direction)."""
        while True:
            item = await self._outbox.get()
            if item.future is not None and item.future.done():
                continue  # the operator gave up while it waited
            try:
                answer = await self.call_raw(item.action, item.payload)
            except (asyncio.CancelledError, ConnectionEnded):  # the connection ended meanwhile
                self._fail(item)
                raise
            except Exception as exc:  # handed to whoever waits, or logged
                if item.future is not None and not item.future.done():
                    item.future.set_exception(exc)
                else:
                    LOG.warning("%s: %s failed: %s", self.id, item.action, exc)
                continue
            if item.future is not None and not item.future.done():
                item.future.set_result(answer)
            else:
                LOG.info("%s: %s answered %s", self.id, item.action, answer)

    def _fail(self, item: _Outgoing) -> None:
        if item.future is not None and not item.future.done():
            item.future.set_exception(NotConnected(f"{self.id}: connection closed"))

    def fail_pending(self) -> None:
        """Fails every queued command at once when the connection ends (no waiting for
        timeouts); called by the endpoint after the connection's tasks have stopped. The
        handlers' deadline timer goes too."""
        self._deadline.cancel()
        while not self._outbox.empty():
            self._fail(self._outbox.get_nowait())

    async def call_raw(self, action: str, payload: JsonObject) -> JsonObject:
        """One CALL with a camelCase payload as given (no key conversion), validated both ways.

        Raises :class:`CommandRejected` on a CALLERROR or an invalid request or answer and
        :class:`CommandTimeout` when no answer comes in time.
        """
        request = Call(_UNSENT, action, payload)
        try:
            fast_schema.validate(request, self._ocpp_version)
        except OCPPError as exc:
            raise CommandRejected(
                exc.code, f"invalid {action} request: {exc.description}", exc.details
            ) from exc
        async with self._calling:
            # the payload as validated: the library reads some 1.6 numbers as Decimal
            unique_id = self._session.send_call(action, request.payload)
            self._answer = asyncio.get_running_loop().create_future()
            try:
                await self._flush()
                async with asyncio.timeout(self._response_timeout_s):  # not wait_for (3.11)
                    answered = await self._answer
            except TimeoutError as exc:
                metrics.call_sent(action, "timeout")
                raise CommandTimeout(f"{self.id}: no answer to {action}") from exc
            finally:
                self._answer = None
                self._session.abandon_call(unique_id)
        if isinstance(answered, ErrorReceived):
            metrics.call_sent(action, "callerror")
            raise CommandRejected(answered.code, answered.description, answered.details)
        metrics.call_sent(action, "result")
        response = CallResult(unique_id, answered.payload)
        response.action = action
        try:
            fast_schema.validate(response, self._ocpp_version)
        except OCPPError as exc:
            raise CommandRejected(
                error_code_for(self._ocpp_version, exc.code),
                f"the charger's {action} answer is invalid: {exc.description}",
                exc.details,
            ) from exc
        # as it came: validation re-reads 1.6 schedule numbers as Decimal (GetCompositeSchedule)
        answer = dict(answered.payload)
        self.registration = self.registration.answered(action, payload, answer)
        return answer


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def plain(value: Any) -> Any:
    """A handler's answer (a payload dataclass, nested ones, lists, dicts) as JSON-ready
    values without the ``None`` fields and items, in one walk: what the library's
    ``remove_nones(serialize_as_dict(...))`` gives, without ``dataclasses.asdict``'s deep
    copies and the second pass."""
    cls: Any = type(value)
    names = _field_names(cls) if hasattr(cls, "__dataclass_fields__") else None
    if names is not None:
        out = {}
        for name in names:
            item = getattr(value, name)
            if item is not None:
                out[name] = plain(item)
        return out
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value if v is not None]
    return value


def _transaction_of(payload: Any) -> str | None:
    """The transaction a CALL is about (1.6 ``transactionId``, 2.0.1
    ``transactionInfo.transactionId``), for the log lines of its handling."""
    if not isinstance(payload, dict):
        return None
    found = payload.get("transactionId")
    if found is None and isinstance(info := payload.get("transactionInfo"), dict):
        found = info.get("transactionId")
    return None if found is None else str(found)[:40]
