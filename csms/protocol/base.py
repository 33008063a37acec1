"""What 1.6 and 2.0.1 connections share: framing, CALLERRORs, and the outgoing-call path.

A connection runs two tasks, both owned by the endpoint: :meth:`CsmsChargePoint.start` reads
and answers frames one at a time (the library's model), and :meth:`run_outbox` sends the CSMS's
own CALLs one at a time from a bounded queue. Handlers never await a CALL: they
:meth:`defer` it, and it is queued once their answer has been sent.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from ocpp.charge_point import ChargePoint, remove_nones, serialize_as_dict
from ocpp.exceptions import InternalError, OCPPError, SecurityError
from ocpp.messages import Call, CallError, CallResult, MessageType
from ocpp.routing import on as _library_on

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
from csms.protocol.frames import FrameError, error_code_for, oversized, parse_frame
from csms.protocol.naming import to_camel, to_snake
from csms.protocol.registration import ACCEPTED, BOOT, REJECTED, Registration

LOG = logging.getLogger("csms.protocol")
OUTBOX_SIZE = 16  # commands waiting per connection; more is ChargerBusy, never an unbounded queue
# An incoming CALL is answered within this time, with CALLERROR InternalError if its handler
# (usually the store) has not finished: chargers time out their CALLs at 30-60 s and would
# otherwise see silence and retry into the same congestion.
HANDLER_DEADLINE_S = 20.0

JsonObject = dict[str, Any]
Handler = TypeVar("Handler", bound=Callable[..., Any])


def _wants_unique_id(handler: Callable[..., Any]) -> bool:
    """Whether a handler takes ``call_unique_id`` (read once per handler function)."""
    function = getattr(handler, "__func__", handler)
    try:
        return bool(_WANTS_UNIQUE_ID[function])
    except KeyError:
        wanted = "call_unique_id" in inspect.signature(handler).parameters
        _WANTS_UNIQUE_ID[function] = wanted
        return wanted


_WANTS_UNIQUE_ID: dict[Callable[..., Any], bool] = {}


def _asked(msg: Call) -> str:
    """A CALL as the log names it: its action (cut: a peer may send any string) and id."""
    return f"{violations.cut(str(msg.action), 50)} {msg.unique_id}"


def on(action: str) -> Callable[[Handler], Handler]:
    """The library's ``@on`` with its type kept (the library has no type hints)."""
    return cast(Callable[[Handler], Handler], _library_on(action))


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


class CsmsChargePoint(ChargePoint):  # type: ignore[misc]  # untyped library
    """The library's ChargePoint with our framing, error mapping, outgoing queue and the
    charger's registration (:mod:`csms.protocol.registration`), which decides what it may
    send: ``registration`` is the one stored for it when the connection opens."""

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
        super().__init__(charger_id, transport, response_timeout=response_timeout_s)
        self.registration = Registration(registration)
        self._max_frame_bytes = max_frame_bytes
        self._handler_deadline_s = handler_deadline_s
        self._outbox: asyncio.Queue[_Outgoing] = asyncio.Queue(OUTBOX_SIZE)
        self._deferred: list[_Outgoing] = []
        self._awaiting: str | None = None  # unique id of our CALL in flight
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
        await self._connection.close(reason)

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

    async def start(self) -> None:
        """Reads frames until the transport raises (the peer went away)."""
        while True:
            message = await self._connection.recv()
            try:
                await self.route_message(message)
            except ConnectionEnded:
                raise
            except Exception:  # a bug in a handler must not drop the charger
                LOG.exception("%s: unexpected error on frame %.200s", self.id, message)

    async def _send(self, message: str) -> None:
        """Sends one frame; logged as sent only once it was (the library logs before)."""
        await self._connection.send(message)
        self.logger.info("%s: send %s", self.id, message)

    async def route_message(self, raw_msg: str) -> None:
        if len(raw_msg.encode() if isinstance(raw_msg, str) else raw_msg) > self._max_frame_bytes:
            msg = oversized(raw_msg, self._max_frame_bytes)
        else:
            msg = parse_frame(raw_msg)
        if not isinstance(msg, FrameError | Call):
            if msg.unique_id != self._awaiting:
                LOG.warning("%s: dropped an answer to no pending call: %s", self.id, msg.unique_id)
                return
            self._response_queue.put_nowait(msg)
            return
        try:
            if isinstance(msg, FrameError):
                await self._reply_error(msg, "a malformed frame")
                return
            try:
                txn = _transaction_of(msg.payload)
                if txn is None:  # most messages: no binding to pay for
                    await self._answer(msg)
                else:
                    with bind(txn=txn):
                        await self._answer(msg)
            finally:
                self._flush_deferred()
        except ConnectionEnded:
            asked = _asked(msg) if isinstance(msg, Call) else "a bad frame"
            LOG.info(
                "%s: left before the answer to %s was sent; nothing more is sent", self.id, asked
            )
            raise

    async def _answer(self, msg: Call) -> None:
        """Every CALL gets a CALLRESULT or a CALLERROR, whatever fails and however slowly.

        The library answers exceptions raised inside a handler itself; this also covers what
        fails around it (an invalid answer, a store that does not answer in time). An OCPPError
        (a schema violation, an unknown action) is answered with its description and the
        details fit to send back (:func:`~csms.protocol.violations.safe_details`)."""
        asked = _asked(msg)
        started, self._refused_with = time.perf_counter(), None
        try:
            async with asyncio.timeout(self._handler_deadline_s):
                await self._handle_call(msg)
        except ConnectionEnded:
            raise  # nobody left to answer
        except OCPPError as error:
            details = violations.safe_details(error.details)
            await self._reply_error(
                FrameError(msg.unique_id, error.code, error.description, details=details), asked
            )
        except TimeoutError:
            LOG.warning("%s: %s not handled in %ss", self.id, msg.action, self._handler_deadline_s)
            await self._reply_error(
                FrameError(msg.unique_id, "InternalError", "the CSMS did not finish in time"), asked
            )
        except Exception:
            LOG.exception("%s: failed to handle %s", self.id, msg.action)
            await self._reply_error(
                FrameError(msg.unique_id, "InternalError", "an unexpected error occurred"), asked
            )
        finally:
            action = msg.action if msg.action in self.route_map else "unknown"
            outcome = self._refused_with or "result"
            metrics.call_received(action, outcome, time.perf_counter() - started)

    async def _handle_call(self, msg: Call) -> None:
        """The library's dispatch of one CALL (same routes, checks, conversions and errors),
        without its per-message overhead: schemas are checked inline by compiled validators
        (:mod:`csms.protocol.fast_schema`) instead of in a thread, key conversions are
        memoised (:mod:`csms.protocol.naming`), and a handler's signature is read once.
        Before all that, a charger that is not accepted may send only what its registration
        allows: anything else is a SecurityError, however malformed."""
        if self.registration.state != ACCEPTED:
            refusal = self.registration.refusal(msg.action)
            if refusal is not None:
                raise SecurityError(refusal.description(), refusal.details())
        handlers = self.route_map.get(msg.action)
        if handlers is None or "_on_action" not in handlers:
            raise violations.unknown_action(msg.action, self._ocpp_version)
        validated = not handlers.get("_skip_schema_validation", False)
        if validated:
            fast_schema.validate(msg, self._ocpp_version)
        handler = handlers["_on_action"]
        kwargs = to_snake(msg.payload)
        if _wants_unique_id(handler):
            kwargs["call_unique_id"] = msg.unique_id
        try:
            response = handler(**kwargs)
            if inspect.isawaitable(response):
                response = await response
        except OCPPError:
            raise  # answered with details fit to send back
        except Exception as exc:  # the library answers a handler's failure itself
            self.logger.exception("Error while handling request '%s'", msg)
            error = msg.create_call_error(exc)
            self._refused_with = error.error_code
            metrics.callerror_sent(error.error_code)
            await self._send(error.to_json())
            return
        result = msg.create_call_result(to_camel(remove_nones(serialize_as_dict(response))))
        if validated:
            try:
                fast_schema.validate(result, self._ocpp_version)
            except OCPPError as error:  # our fault, not the charger's
                LOG.error("%s: our answer to %s is invalid: %s", self.id, msg.action, error)
                raise InternalError("the CSMS's answer was invalid") from None
        await self._send(result.to_json())

    async def _reply_error(self, error: FrameError, asked: str) -> None:
        """Logs what was refused and why (the same words the charger gets), and answers it
        unless it was itself an answer."""
        answer = error.to_call_error(self._ocpp_version)
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
            await self._send(answer.to_json())

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
            return await asyncio.wait_for(asyncio.shield(item.future), timeout_s)
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
        timeouts); called by the endpoint after the connection's tasks have stopped."""
        while not self._outbox.empty():
            self._fail(self._outbox.get_nowait())

    async def call_raw(self, action: str, payload: JsonObject) -> JsonObject:
        """One CALL with a camelCase payload as given (no key conversion), validated both ways.

        Raises :class:`CommandRejected` on a CALLERROR or an invalid request or answer and
        :class:`CommandTimeout` when no answer comes in time.
        """
        call = Call(str(self._unique_id_generator()), action, payload)
        try:
            fast_schema.validate(call, self._ocpp_version)
        except OCPPError as exc:
            raise CommandRejected(
                exc.code, f"invalid {action} request: {exc.description}", exc.details
            ) from exc
        async with self._call_lock:
            self._awaiting = call.unique_id
            try:
                await self._send(call.to_json())
                response = await self._get_specific_response(call.unique_id, self._response_timeout)
            except TimeoutError as exc:
                metrics.call_sent(action, "timeout")
                raise CommandTimeout(f"{self.id}: no answer to {action}") from exc
            finally:
                self._awaiting = None
        if isinstance(response, CallError) or response.message_type_id == MessageType.CallError:
            metrics.call_sent(action, "callerror")
            raise CommandRejected(
                response.error_code, response.error_description, response.error_details
            )
        metrics.call_sent(action, "result")
        assert isinstance(response, CallResult)
        response.action = action
        try:
            fast_schema.validate(response, self._ocpp_version)
        except OCPPError as exc:
            raise CommandRejected(
                error_code_for(self._ocpp_version, exc.code),
                f"the charger's {action} answer is invalid: {exc.description}",
                exc.details,
            ) from exc
        answer = dict(response.payload)
        self.registration = self.registration.answered(action, payload, answer)
        return answer


def _transaction_of(payload: Any) -> str | None:
    """The transaction a CALL is about (1.6 ``transactionId``, 2.0.1
    ``transactionInfo.transactionId``), for the log lines of its handling."""
    if not isinstance(payload, dict):
        return None
    found = payload.get("transactionId")
    if found is None and isinstance(info := payload.get("transactionInfo"), dict):
        found = info.get("transactionId")
    return None if found is None else str(found)[:40]
