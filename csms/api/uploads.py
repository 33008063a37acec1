"""Bounds on what one HTTP request may cost the CSMS: its body size.

* :class:`BodyLimit` is an ASGI middleware that refuses a body larger than its path's limit
  with 413, from ``Content-Length`` before anything is read, and while reading a chunked or
  lying body: a 60 MB upload costs at most the limit, never a spooled 60 MB file. Once the
  limit is passed the answer is 413 whatever the route made of the error (FastAPI answers
  400 to any failure while it reads a JSON body).
* the photos themselves are decoded through :class:`csms.decodes.DecodeGate`, a bound on how
  many run at once (the app builds it into the context).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from csms.errors import CsmsError

KIB = 1024
MIB = 1024 * KIB
MAX_PHOTO_BYTES = 10 * MIB  # an uploaded photo of a QR code (a 48 MP phone JPEG is 8-12 MB)
PHOTO_REQUEST_BYTES = MAX_PHOTO_BYTES + 64 * KIB  # the photo plus its multipart framing
UPLOAD_FRAMING_BYTES = 64 * KIB  # multipart framing around a charger's uploaded file
DEFAULT_REQUEST_BYTES = MIB  # every other request body: JSON and forms of a few kB


class BodyTooLarge(CsmsError):
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
        started = exceeded = False

        async def counted_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app made of it (FastAPI: 400 "error parsing the body")
                if not started and message["type"] == "http.response.start":
                    started = True
                    await _too_large(send, limit)
                return
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
