"""The OCPP WebSocket endpoint ``/ocpp/{charge_point_id}``: transport only.

Handshake: the subprotocol picks the version (``ocpp2.0.1`` preferred over ``ocpp1.6``; a
client offering neither gets HTTP 400 saying so), then the charger's security profile is
checked against the connection's TLS client certificate and scheme
(:mod:`csms.protocol.admission`: profile 3 is admitted by its certificate, a certificate naming
another charger is refused with 403), then HTTP Basic auth (security profiles 1 and 2;
username = charger id). Unknown ids get 404, or are registered as ``Pending`` with the
presented password when ``auto_register_chargers`` is on. An address that sent too many wrong
passwords gets 429 with ``Retry-After`` (:mod:`csms.password_throttle`). A connection for a
charger that is already connected replaces (closes) the old one, on this node or, in a
cluster, on another (:mod:`csms.cluster`).

After the handshake the connection runs two owned tasks, the reader (:func:`read_frames`:
socket -> ChargePoint, one frame at a time) and the outbox, until the peer leaves or a newer
connection closes this one. Frames are text; their size is checked by the OCPP session
(CALLERROR above ``ocpp_max_frame_bytes``) and by the server (close 1009 above
``WS_HARD_LIMIT_FACTOR`` times that, before the frame is even buffered whole).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import random
import re
from collections.abc import Coroutine
from typing import Any, Protocol

from fastapi import APIRouter, WebSocket
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocketDisconnect

from config.logs import bind_for_task
from csms import metrics
from csms.context import CsmsContext
from csms.errors import ChargerAuthError, ConnectionEnded, StoreError
from csms.password_throttle import PasswordThrottled
from csms.passwords import VerifierOverloaded, hash_password
from csms.protocol import admission, provisioning
from csms.protocol.base import CsmsChargePoint, Transport
from csms.protocol.redaction import redact_frame
from csms.protocol.registration import PENDING, REJECTED, STATES
from csms.protocol.v16 import ChargePoint16
from csms.protocol.v201 import ChargePoint201
from csms.store import chargers as store
from csms.store.models import CHARGER_ID_PATTERN
from csms.ws_link import FRAMES_EXTENSION, FrameLink
from qr_extension.wire import SUBPROTOCOL_16, SUBPROTOCOL_201

LOG = logging.getLogger("csms.endpoint")
_CHARGER_ID = re.compile(CHARGER_ID_PATTERN)
WS_HARD_LIMIT_FACTOR = 4
VERSIONS = {SUBPROTOCOL_201: "2.0.1", SUBPROTOCOL_16: "1.6"}  # in order of preference
_JITTER = random.Random()  # our own: spreading retries must not move the global random state

router = APIRouter()


class WebSocketTransport:
    """Moves text frames between an accepted WebSocket and a ChargePoint; logs them.

    Served by our uvicorn protocol, the frames go through its direct link (the scope's
    ``qrcharge.frames`` extension: no ASGI events per frame); under any other server through
    Starlette's WebSocket. Both directions raise :class:`ConnectionEnded` once the socket is
    closed; a frame enters the message log only when it was really received or sent."""

    __slots__ = ("_charger_id", "_ctx", "_link", "_ws", "closed")

    def __init__(self, websocket: WebSocket, ctx: CsmsContext, charger_id: str) -> None:
        self._ws = websocket
        self._link: FrameLink | None = websocket.scope.get("extensions", {}).get(FRAMES_EXTENSION)
        self._ctx = ctx
        self._charger_id = charger_id
        self.closed = asyncio.Event()

    async def recv(self) -> str:
        if self._link is not None:
            text = await self._link.recv()
        else:
            text = await self._receive_asgi()
        ctx = self._ctx
        ctx.writer.touch(self._charger_id, ctx.clock())  # any frame: last seen
        ctx.message_log.record(self._charger_id, "in", redact_frame(text))
        return text

    async def _receive_asgi(self) -> str:
        try:
            message = await self._ws.receive()
        except (WebSocketDisconnect, RuntimeError) as exc:
            raise ConnectionEnded(str(exc)) from exc
        if message["type"] == "websocket.disconnect":
            raise ConnectionEnded(f"code {message.get('code')}")
        text = message.get("text")
        if text is None:
            raw = message.get("bytes") or b""
            text = raw.decode("utf-8", errors="replace")
        return str(text)

    async def send(self, message: str) -> None:
        if self._link is not None:
            await self._link.send(message)
        else:
            try:
                await self._ws.send_text(message)
            except (WebSocketDisconnect, RuntimeError, OSError) as exc:  # closed, or closing
                raise ConnectionEnded(f"socket closed ({type(exc).__name__})") from exc
        self._ctx.message_log.record(self._charger_id, "out", redact_frame(message))

    async def close(self, reason: str) -> None:
        self.closed.set()
        if self._link is not None:
            await self._link.close(1000, reason[:120])
            return
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self._ws.close(code=1000, reason=reason[:120])


def choose_version(offered: list[str]) -> str | None:
    for subprotocol in VERSIONS:
        if subprotocol in offered:
            return subprotocol
    return None


def basic_credentials(header: str | None) -> tuple[str, str]:
    if not header or not header.lower().startswith("basic "):
        raise ChargerAuthError("HTTP Basic authentication is required")
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ChargerAuthError("malformed Basic credentials") from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise ChargerAuthError("malformed Basic credentials")
    return user, password


async def authenticate(
    ctx: CsmsContext, charger_id: str, header: str | None, client: str | None = None
) -> int:
    """0 when the charger may connect, else the HTTP status to refuse it with (a 503 from
    the password verifier raises :class:`VerifierOverloaded`, a 429 for an address that
    guessed wrong too often :class:`PasswordThrottled`; both carry their ``Retry-After``).
    ``client`` is the peer's address, whose wrong passwords are counted."""
    try:
        user, password = basic_credentials(header)
    except ChargerAuthError:
        return 401
    if user != charger_id:  # the OCPP security profiles' rule: user name = charger id
        LOG.info("%s: Basic user name %r is not the charger id", charger_id, user[:48])
        return 401
    if not _CHARGER_ID.fullmatch(charger_id):
        return 404  # no such charger can exist, and none is auto-registered
    await ctx.password_throttle.check(charger_id, client)  # before any lookup or argon2
    found = await ctx.db.reader.run(store.password_hash_of, charger_id)  # one hop, no pool
    if found is None:
        if not ctx.settings.auto_register_chargers:
            return 404
        hashed = await asyncio.to_thread(hash_password, password)
        async with ctx.db.session() as session:
            try:
                await store.create_charger(
                    session,
                    charger_id=charger_id,
                    password_hash=hashed,
                    registration=provisioning.PENDING,
                    security_profile=admission.default_profile(ctx.settings),
                    now=ctx.clock(),
                )
            except StoreError:
                return 409  # registered by a concurrent attempt: let it retry
        return 0
    (stored,) = found
    if stored is None:
        return 401
    if not await ctx.passwords.verify(charger_id, password, stored):
        await ctx.password_throttle.failed(charger_id, client)
        return 401
    await ctx.password_throttle.succeeded(charger_id, client)
    return 0


async def _deny(
    websocket: WebSocket, status: int, reason: str, retry_after_s: int | None = None
) -> None:
    LOG.info("refused %s: %s %s", websocket.url.path, status, reason)
    metrics.handshake_refused(_REFUSAL_LABELS.get(status, str(status)))
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        headers = None
        if status == 401:
            headers = {"WWW-Authenticate": 'Basic realm="ocpp"'}
        elif status in (429, 503):
            # the address's hold, the verifier's appointment, or (store congested) a spread
            retry = retry_after_s if retry_after_s is not None else _JITTER.randint(5, 30)
            headers = {"Retry-After": str(retry)}
        await websocket.send_denial_response(
            PlainTextResponse(reason, status_code=status, headers=headers)
        )
    else:
        await websocket.close(code=1008, reason=reason[:120])


_REFUSAL_LABELS = {
    400: "subprotocol",
    401: "authentication",
    403: "security_profile",
    404: "unknown_charger",
    409: "registering",
    429: "throttled",
    503: "busy",
}
_REASONS = {
    401: "charger authentication failed (HTTP Basic, username = charger id)",
    404: "unknown charger id",
    409: "charger is being registered, retry",
    429: "too many wrong passwords from this address, retry after the Retry-After seconds",
    503: "CSMS busy (reconnect storm or store congested), retry after the Retry-After seconds",
}


@router.websocket("/ocpp/{charge_point_id}")
async def ocpp_endpoint(websocket: WebSocket, charge_point_id: str) -> None:
    ctx: CsmsContext = websocket.app.state.ctx
    offered = list(websocket.scope.get("subprotocols") or [])
    subprotocol = choose_version(offered)
    if subprotocol is None:
        await _deny(
            websocket,
            400,
            f"no supported OCPP subprotocol offered {offered}; use one of {list(VERSIONS)}",
        )
        return
    retry_after_s = None
    try:
        admitted = await admission.admit(ctx, charge_point_id, websocket.scope)
        if isinstance(admitted, admission.Refused):
            await _deny(websocket, admitted.status, admitted.reason)
            return
        refused = 0
        if admitted is admission.Admitted.PASSWORD_NEEDED:
            header = websocket.headers.get("authorization")
            client = websocket.client.host if websocket.client else None
            refused = await authenticate(ctx, charge_point_id, header, client)
    except VerifierOverloaded as busy:  # reconnect storm: come back at the appointed time
        refused, retry_after_s = 503, busy.retry_after_s
    except PasswordThrottled as held:  # this address guessed wrong too often
        refused, retry_after_s = 429, held.retry_after_s
    except (PoolTimeout, OperationalError):  # store congested: let the charger come back later
        LOG.warning("%s: store busy during the handshake", charge_point_id)
        refused = 503
    if refused:
        await _deny(websocket, refused, _REASONS[refused], retry_after_s)
        return
    # read before the handshake completes: once the charger is in, it is registered at once
    registration = await _stored_registration(ctx, charge_point_id)
    await websocket.accept(subprotocol=subprotocol)
    await serve(ctx, websocket, charge_point_id, VERSIONS[subprotocol], registration)


async def serve(
    ctx: CsmsContext, websocket: WebSocket, charger_id: str, version: str, registration: str
) -> None:
    """Runs one accepted connection until either side ends it."""
    transport = WebSocketTransport(websocket, ctx, charger_id)
    await serve_transport(ctx, transport, charger_id, version, registration)


class ClosableTransport(Transport, Protocol):
    """A transport that says when it was closed (by a newer connection or shutdown)."""

    closed: asyncio.Event


async def serve_transport(
    ctx: CsmsContext,
    transport: ClosableTransport,
    charger_id: str,
    version: str,
    registration: str | None = None,
) -> None:
    """Runs one charger connection over ``transport`` (a WebSocket, or an in-memory one for
    tests and benchmarks) until either side ends it; ``registration`` as stored (read here
    when not given)."""
    bind_for_task(charger_id=charger_id)  # every line of this connection and its tasks
    cls = ChargePoint16 if version == "1.6" else ChargePoint201
    if registration is None:
        registration = await _stored_registration(ctx, charger_id)
    cp: CsmsChargePoint = cls(charger_id, transport, ctx, registration=registration)
    old = ctx.registry.attach(cp)
    if old is not None:
        LOG.info("%s: new connection replaces the old one", charger_id)
        await old.close("replaced by a new connection")
    await ctx.dispatcher.link_opened(cp)  # in a cluster: an older one on another node closes
    await _record_connection(provisioning.connected(ctx, charger_id, version), charger_id)
    tasks = [
        asyncio.create_task(read_frames(cp, transport), name=f"{charger_id}-reader"),
        asyncio.create_task(cp.run_outbox(), name=f"{charger_id}-outbox"),
        asyncio.create_task(transport.closed.wait(), name=f"{charger_id}-closed"),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, ConnectionEnded):
                LOG.error("%s: connection task failed", charger_id, exc_info=exc)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        cp.fail_pending()
        # the row goes offline unless a newer connection (on another node) holds the charger
        if ctx.registry.detach(cp) and await ctx.dispatcher.link_closed(cp):
            await _record_connection(provisioning.disconnected(ctx, charger_id), charger_id)


async def read_frames(cp: CsmsChargePoint, transport: Transport) -> None:
    """Hands every frame the charger sends to its ChargePoint, each handled (and answered)
    before the next is read, until the transport raises (the peer went away)."""
    while True:
        frame = await transport.recv()
        try:
            await cp.route_message(frame)
        except ConnectionEnded:
            raise
        except Exception:  # a bug in a handler must not drop the charger
            LOG.exception("%s: unexpected error on frame %.200s", cp.id, frame)


async def _stored_registration(ctx: CsmsContext, charger_id: str) -> str:
    """The registration a connection opens with: the stored one (a charger accepted before
    may reconnect without booting again); ``Rejected`` for a charger deleted meanwhile, and
    ``Pending`` (boot first) when the store cannot say."""
    try:
        stored = await ctx.db.reader.run(store.registration_of, charger_id)
    except (StoreError, SQLAlchemyError) as exc:
        LOG.warning("%s: registration not read (%s): it must boot first", charger_id, exc)
        return PENDING
    if stored is None:
        return REJECTED
    return stored if stored in STATES else PENDING


async def _record_connection(update: Coroutine[Any, Any, None], charger_id: str) -> None:
    """The ``online`` flag is informative: a congested store must not end the connection."""
    try:
        await update
    except (StoreError, SQLAlchemyError) as exc:
        LOG.warning("%s: connection state not stored: %s", charger_id, exc)
