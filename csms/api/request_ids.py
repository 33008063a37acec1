"""Every HTTP request gets an id: the caller's ``X-Request-ID`` when it is a plain token, else
a new one. It is bound to the request's log lines (:mod:`config.logs`) and sent back in the
answer's ``X-Request-ID``, so a driver's or an operator's report can be found in the logs."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.logs import bind

HEADER = b"x-request-id"
_ACCEPTED = re.compile(rb"[A-Za-z0-9._-]{1,64}")


class RequestIds:
    """ASGI middleware: binds ``request_id`` and echoes it as ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", ()) if k == HEADER), b"")
        request_id = given if _ACCEPTED.fullmatch(given) else uuid.uuid4().hex.encode()

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (HEADER, request_id)],
                }
            await send(message)

        with bind(request_id=request_id.decode()):
            await self.app(scope, receive, with_id)
