"""The HTTP/1.1 protocol the CSMS serves with: uvicorn's (httptools), closing as a careful
server closes.

When an answer ends the connection before the request's body was all read (a 413 for an
upload past its limit, answered in the middle of the body), closing the socket at once makes
the kernel send a reset, because the client's data is still arriving: a client that writes
its whole body before it reads (most do) then sees "connection reset" and loses the answer
that was already in its buffer. Here such a close *lingers*: the socket is half-closed (the
answer is followed by the end of our stream), whatever the client still sends is read and
dropped, and the socket is closed when the client closes its side or after
:data:`LINGER_S`, whichever comes first. Memory stays bounded (nothing is kept) and so does
time. Any other close (a complete request, a WebSocket after its upgrade) is immediate.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LINGER_S = 5.0  # at most this long after the answer, what the client still sends is dropped


class _LingeringTransport:
    """The connection's transport as the HTTP protocol sees it; see the module docstring."""

    def __init__(self, transport: asyncio.Transport, protocol: LingeringHttpProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._timer: asyncio.TimerHandle | None = None
        self.lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        real = self._transport
        if self.lingering or real.is_closing():
            return
        cycle = self._protocol.cycle
        unread = cycle is not None and cycle.more_body and not cycle.disconnected
        if real.get_protocol() is not self._protocol or not unread:
            real.close()  # nothing on its way from the client (or no longer HTTP)
            return
        self.lingering = True
        if real.can_write_eof():  # TLS cannot half-close: the answer's length ends it
            real.write_eof()
        real.resume_reading()
        self._timer = asyncio.get_running_loop().call_later(LINGER_S, real.close)

    def forget(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class LingeringHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose closes linger (see the module docstring)."""

    _lingering: _LingeringTransport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._lingering = _LingeringTransport(transport, self)
        super().connection_made(self._lingering)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None and self._lingering.lingering:
            return  # the rest of a body already answered: dropped
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lingering is not None:
            self._lingering.forget()
        super().connection_lost(exc)
