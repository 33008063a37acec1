"""Bounds on what one HTTP request may cost the CSMS: body size, and decoding uploaded photos.

* :class:`BodyLimit` is an ASGI middleware that refuses a body larger than its path's limit
  with 413, from ``Content-Length`` before anything is read, and while reading a chunked or
  lying body: a 60 MB upload costs at most the limit, never a spooled 60 MB file.
* :class:`DecodeGate` lets a fixed number of photo decodes run at once, on threads of its own
  (each decode holds a greyscale frame and the decoder's working copies), with a short line
  behind them; a request beyond that is told to come back (503) instead of queueing memory
  without bound.
* :func:`give_back_freed_memory` asks glibc to return freed heap pages to the system after a
  decode: large frames freed by worker threads otherwise stay in their arenas for good.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

T = TypeVar("T")

KIB = 1024
MIB = 1024 * KIB
MAX_PHOTO_BYTES = 10 * MIB  # an uploaded photo of a QR code (a 48 MP phone JPEG is 8-12 MB)
PHOTO_REQUEST_BYTES = MAX_PHOTO_BYTES + 64 * KIB  # the photo plus its multipart framing
DEFAULT_REQUEST_BYTES = MIB  # every other request body: JSON and forms of a few kB


class BodyTooLarge(Exception):
    """Raised inside a request's ``receive`` once its body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class BodyLimit:
    """Refuses HTTP request bodies over a per-path-prefix limit with 413 Content Too Large."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int = DEFAULT_REQUEST_BYTES,
        per_prefix: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        # longest prefix first, so "/api/v1/settlements" wins over "/api"
        self.per_prefix = sorted((per_prefix or {}).items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.per_prefix:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = b'{"detail":"request body larger than %d bytes"}' % limit
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GateFull(Exception):
    """Every decode slot is busy and the line behind them is full."""


class DecodeGate:
    """Runs photo decodes on ``slots`` threads of its own, with at most ``waiting`` more in line.

    Own threads rather than the event loop's default pool: the decoder keeps per-thread working
    buffers, so the memory a burst of uploads leaves behind is bounded by ``slots``, not by the
    size of a shared pool."""

    def __init__(self, *, slots: int = 2, waiting: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="photo-decode")
        self._capacity = slots + waiting
        self._admitted = 0

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a decode thread; raises :class:`GateFull` when the line is full."""
        if self._admitted >= self._capacity:
            raise GateFull
        self._admitted += 1
        try:
            return await asyncio.wrap_future(self._pool.submit(_then_trim, work, *args))
        finally:
            self._admitted -= 1

    def close(self) -> None:
        """Stops the decode threads (decodes not yet started are cancelled)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _then_trim(work: Callable[..., T], *args: Any) -> T:
    try:
        return work(*args)
    finally:
        give_back_freed_memory()


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def give_back_freed_memory() -> None:
    """Returns the heap's free pages to the system (glibc ``malloc_trim``; elsewhere a no-op)."""
    if _TRIM is not None:
        _TRIM(0)
