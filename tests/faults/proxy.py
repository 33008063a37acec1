"""A TCP proxy between a charger and the CSMS that the test controls (asyncio, 127.0.0.1).

It forwards WebSocket traffic whole frame by whole frame (:func:`frame_length`), so that it
can hold, drop, delay or duplicate frames at their boundaries:

* ``cut()``: every open connection is aborted on both sides (the peers see it closed);
* ``refuse``: new connections are closed at once (the link is down);
* per direction (``up``: charger -> CSMS, ``down``: CSMS -> charger) a :class:`Direction`:
  ``"pass"``, ``"drop"`` (frames read and thrown away), ``"stall"`` (nothing read or sent, no
  FIN: the bytes wait in the kernel until the stall ends) and ``delay_s`` (each frame goes out
  that long after it came in, in order);
* ``duplicate``: a predicate on a frame's (unmasked) payload; the first frame it matches is
  sent twice, then the predicate is spent.

The client's handshake loses its ``Sec-WebSocket-Extensions`` header, as a proxy may do, so
no compression is agreed and a frame's payload is its text (a duplicated compressed frame
would not even decompress). What each direction forwarded is kept as text (``seen``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OPCODE_TEXT = 0x1
HEADER_END = b"\r\n\r\n"


def frame_length(buffer: bytes | bytearray) -> int | None:
    """The length of the whole WebSocket frame at the start of ``buffer`` (RFC 6455 5.2:
    2 header bytes, a 16- or 64-bit extended length, a 4-byte mask when masked), or None
    while it is incomplete."""
    if len(buffer) < 2:
        return None
    size = buffer[1] & 0x7F
    at = 2
    if size == 126:
        if len(buffer) < 4:
            return None
        size, at = int.from_bytes(buffer[2:4], "big"), 4
    elif size == 127:
        if len(buffer) < 10:
            return None
        size, at = int.from_bytes(buffer[2:10], "big"), 10
    if buffer[1] & 0x80:
        at += 4
    total = at + size
    return total if len(buffer) >= total else None


def frame_payload(frame: bytes) -> tuple[int, bytes]:
    """A whole frame's opcode and payload, unmasked."""
    size = frame[1] & 0x7F
    at = 2 + (2 if size == 126 else 8 if size == 127 else 0)
    if not frame[1] & 0x80:
        return frame[0] & 0x0F, frame[at:]
    mask, data = frame[at : at + 4], frame[at + 4 :]
    return frame[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def without_extensions(request: bytes) -> bytes:
    """The client's HTTP upgrade request without ``Sec-WebSocket-Extensions``."""
    lines = request.split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(b"sec-websocket-extensions:")]
    return b"\r\n".join(kept)


def ocpp_message(text: str) -> list[Any] | None:
    """An OCPP-J message (``[2, id, action, payload]``, ``[3, id, payload]``, ...) or None."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message if isinstance(message, list) and message else None


@dataclass
class Direction:
    mode: str = "pass"  # pass | drop | stall
    delay_s: float = 0.0
    duplicate: Callable[[str], bool] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    seen: list[str] = field(default_factory=list)  # text frames forwarded (a repeat twice)
    dropped: int = 0
    duplicated: int = 0

    def set(self, mode: str = "pass", *, delay_s: float = 0.0) -> None:
        self.mode, self.delay_s = mode, delay_s
        self.changed.set()
        self.changed = asyncio.Event()

    async def passable(self) -> None:
        """Returns once this direction is not stalled."""
        while self.mode == "stall":
            await self.changed.wait()


class FaultProxy:
    """``127.0.0.1:<port>`` forwarding to ``127.0.0.1:<upstream>``."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.up = Direction()
        self.down = Direction()
        self.refuse = False
        self.connections = 0
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        """Aborts every open connection, both sides."""
        for client, server in list(self._open):
            client.transport.abort()
            server.transport.abort()
        self._open.clear()
        self.cuts += 1

    def heal(self) -> None:
        self.up.set("pass")
        self.down.set("pass")
        self.refuse = False

    # --- one connection ----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        pair = (writer, up_writer)
        self._open.add(pair)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, self.up, client_side=True)),
            asyncio.create_task(self._pump(up_reader, writer, self.down, client_side=False)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            self._open.discard(pair)
            for side in pair:
                side.transport.abort()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: Direction,
        *,
        client_side: bool,
    ) -> None:
        """Moves the handshake, then whole frames, from ``reader`` to ``writer``."""
        buffer = bytearray()
        handshake = True
        while True:
            await direction.passable()  # a stall reads nothing: no FIN, no data
            data = await reader.read(65536)
            if not data:
                return
            arrived = asyncio.get_running_loop().time()
            buffer += data
            units: list[tuple[bytes, bool]] = []  # (bytes, is a frame)
            if handshake:
                end = buffer.find(HEADER_END)
                if end < 0:
                    continue
                head = bytes(buffer[: end + len(HEADER_END)])
                del buffer[: end + len(HEADER_END)]
                if client_side:
                    head = without_extensions(head)
                elif not head.startswith(b"HTTP/1.1 101"):  # refused: the rest is a body
                    writer.write(head + bytes(buffer))
                    await writer.drain()
                    return await self._raw(reader, writer)
                handshake = False
                units.append((head, False))
            while (size := frame_length(buffer)) is not None:
                units.append((bytes(buffer[:size]), True))
                del buffer[:size]
            for unit, is_frame in units:
                await self._forward(unit, writer, direction, arrived, frame=is_frame)

    async def _forward(
        self,
        unit: bytes,
        writer: asyncio.StreamWriter,
        direction: Direction,
        arrived: float,
        *,
        frame: bool,
    ) -> None:
        await direction.passable()
        if direction.mode == "drop" and frame:
            direction.dropped += 1
            return
        if direction.delay_s:
            wait = arrived + direction.delay_s - asyncio.get_running_loop().time()
            await asyncio.sleep(max(0.0, wait))
        copies = 1
        if frame:
            opcode, payload = frame_payload(unit)
            if opcode == OPCODE_TEXT:
                text = payload.decode("utf-8", errors="replace")
                if direction.duplicate is not None and direction.duplicate(text):
                    direction.duplicate = None
                    direction.duplicated += 1
                    copies = 2
                direction.seen.extend([text] * copies)
        writer.write(unit * copies)
        await writer.drain()

    @staticmethod
    async def _raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()
