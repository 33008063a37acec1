"""The CSMS's WebSocket protocol for uvicorn: the TLS scope extension, and a direct frame
link that the OCPP endpoint uses once it has accepted a connection.

Through ASGI every frame costs a dict event, an ``asyncio.Queue`` hand-over, Starlette's state
checks, a wrapper per middleware around ``send``, uvicorn's checks, and a pause and resume of
the socket's reading (uvicorn pauses after each frame until the app took it): several times
what the OCPP session itself spends on a Heartbeat. The handshake still goes through ASGI (the
route, the subprotocol, the admission and HTTP Basic checks, the answer's headers from the
middlewares); after ``websocket.accept`` the endpoint reads and writes text frames here
(``scope["extensions"]["qrcharge.frames"]`` holds the :class:`FrameLink`), with the same
websockets-sansio state machine under it, so frame size limits, pings, close codes and TLS are
uvicorn's as before.

Incoming frames wait in a :class:`FrameInbox` (it replaces uvicorn's queue: ASGI reads of the
same connection still work, events built on demand). Reading from the socket is paused only
while :data:`INBOX_HIGH` frames wait unread, so a peer that floods is still held back, and
resumed when the reader has caught up.
"""

from __future__ import annotations

import contextlib
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from websockets.exceptions import InvalidState
from websockets.http11 import Request

from csms.errors import ConnectionEnded
from csms.tls import TlsWebSocketProtocol
from csms.waitqueue import WaitQueue

FRAMES_EXTENSION = "qrcharge.frames"
INBOX_HIGH = 4  # frames waiting unread before the socket's reading pauses
_Item = str | bytes | dict[str, Any]


class FrameInbox(WaitQueue[_Item]):
    """What one connection received and its reader has not taken yet: text frames as ``str``,
    binary ones as ``bytes``, and uvicorn's ASGI events (connect, disconnect) as dicts.

    Quacks like the part of ``asyncio.Queue`` uvicorn uses (``put_nowait``, ``get``,
    ``empty``), with one reader per connection; unbounded (reading from the socket pauses
    instead, see :data:`INBOX_HIGH`)."""

    __slots__ = ()


def as_event(item: _Item) -> dict[str, Any]:
    """An inbox item as the ASGI event it stands for."""
    if isinstance(item, str):
        return {"type": "websocket.receive", "text": item}
    if isinstance(item, bytes):
        return {"type": "websocket.receive", "bytes": item}
    return item


class FrameLink:
    """Text frames in and out of one accepted connection, without ASGI.

    :meth:`recv` and :meth:`send` raise :class:`~csms.errors.ConnectionEnded` once the peer is
    gone or the connection is closing."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: OcppWebSocketProtocol) -> None:
        self._protocol = protocol

    async def recv(self) -> str:
        protocol = self._protocol
        item = await protocol.queue.get()
        protocol.taken()
        if isinstance(item, str):
            return item
        if isinstance(item, bytes):
            return item.decode("utf-8", errors="replace")
        if item.get("type") == "websocket.receive":
            text = item.get("text")
            if text is None:
                return bytes(item.get("bytes") or b"").decode("utf-8", errors="replace")
            return str(text)
        raise ConnectionEnded(f"code {item.get('code')}")

    async def send(self, text: str) -> None:
        protocol = self._protocol
        if not protocol.writable.is_set():  # the peer reads slowly: wait for the buffer
            await protocol.writable.wait()
        if protocol.disconnected or protocol.close_sent:
            raise ConnectionEnded("socket closed")
        try:
            protocol.conn.send_text(text.encode())
        except InvalidState as exc:
            raise ConnectionEnded("socket closed (InvalidState)") from exc
        protocol.transport.write(b"".join(protocol.conn.data_to_send()))

    async def close(self, code: int, reason: str) -> None:
        """The closing handshake, as uvicorn's ``websocket.close`` (nothing when closed)."""
        with contextlib.suppress(ClientDisconnected, RuntimeError, InvalidState):
            await self._protocol.send({"type": "websocket.close", "code": code, "reason": reason})


class OcppWebSocketProtocol(TlsWebSocketProtocol):
    """uvicorn's websockets-sansio protocol with the ``tls`` scope extension, the
    :class:`FrameInbox` and the :class:`FrameLink` in the scope."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: FrameInbox = FrameInbox()  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the app's task starts on the next turn of the loop
            scope["extensions"][FRAMES_EXTENSION] = FrameLink(self)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            self.forget_handshake()

    def forget_handshake(self) -> None:
        """Drops what only the handshake needed (its request and response, the scope's copy of
        the request headers): a connected charger would carry them for hours. The request's
        headers are emptied in place: websockets' parser keeps the request while it runs."""
        request = getattr(self, "request", None)
        if request is not None:
            request.headers.clear()
        self.request = None  # type: ignore[assignment]
        self.response = None  # type: ignore[assignment]
        headers = self.scope.get("headers")
        if isinstance(headers, list):
            headers.clear()  # in place: Starlette's Headers of this scope hold the same list

    def send_receive_event_to_app(self) -> None:
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:  # past our close: dropped, the peer's close reply still read
            return
        if self.curr_msg_data_type == "text":
            try:
                self.queue.put_nowait(data.decode())
            except UnicodeDecodeError:
                self.logger.info("invalid UTF-8 in a text frame: closing with 1007")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        else:
            self.queue.put_nowait(bytes(data))
        if not self.read_paused and len(self.queue) >= INBOX_HIGH:
            self.read_paused = True
            self.transport.pause_reading()

    def taken(self) -> None:
        """The reader took an item: reading resumes once it has caught up."""
        if self.read_paused and self.queue.empty():
            self.read_paused = False
            self.transport.resume_reading()

    async def receive(self) -> Any:
        item = await self.queue.get()
        self.taken()
        return as_event(item)
