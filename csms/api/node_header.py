"""Every answer names the node that gave it: ``X-Qrcharge-Node`` on HTTP responses and on the
WebSocket handshake's answer, so that an operator (or a test) behind a load balancer sees which
process of the cluster served a request or holds a charger's connection."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-qrcharge-node"
_STARTS = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})


class NodeHeader:
    """ASGI middleware: adds ``X-Qrcharge-Node: <node id>`` to every answer's headers."""

    def __init__(self, app: ASGIApp, *, node_id: str) -> None:
        self.app = app
        self._value = node_id.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def with_node(message: Message) -> None:
            if message["type"] in _STARTS:
                headers = [*message.get("headers", []), (HEADER, self._value)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_node)
