"""One CSMS node's side of the cluster, and the dispatcher that reaches a charger on any node.

Each node listens on two Redis pub/sub channels:

* ``{prefix}:node:{node id}``: questions for the chargers it holds (``send`` a command,
  ``call`` an operator's raw CALL: run on the local connection, answered on the asking
  node's own channel under the question's id), ``close`` (the charger connected to another
  node: this older connection ends; or the operator deleted it), ``registration`` (the
  operator changed the charger's registration), and the ``reply`` to its own questions;
* ``{prefix}:all``: ``broadcast`` (a command for every accepted charger of every node) and
  ``invalidate`` (something a node keeps in memory changed: every other node drops or
  reloads it, see :meth:`ClusterNode.on_invalidate`).

:class:`ClusterDispatcher` is the :class:`~csms.commands.CommandDispatcher` of a node in a
cluster: a charger whose socket is here is served by the :class:`~csms.commands.LocalDispatcher`
as in a single node; otherwise the presence key names its node, which is asked, and its answer,
CALLERROR, timeout or "not connected" comes back as the same exception it would be here. When
Redis is unreachable a command for another node raises
:class:`~csms.errors.ClusterUnavailable` (503) while the chargers of this node still work.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from csms.cluster.presence import Presence
from csms.commands import (
    ChargerLink,
    Command,
    ConnectionRegistry,
    JsonObject,
    LocalDispatcher,
    Outcome,
    RevokeStartToken,
    SendVendorData,
    SetIdentificationSecret,
    StartCharging,
    StopCharging,
)
from csms.errors import (
    ChargerBusy,
    ClusterUnavailable,
    CommandError,
    CommandRejected,
    CommandTimeout,
    NotConnected,
)

LOG = logging.getLogger("csms.cluster")
REPLY_MARGIN_S = 2.0  # beyond the holding node's own call timeout: the answer's way back
RECONNECT_S = 1.0  # between attempts to listen again after Redis went away
_COMMANDS: dict[str, type[Any]] = {
    c.__name__: c
    for c in (
        StartCharging,
        StopCharging,
        SetIdentificationSecret,
        SendVendorData,
        RevokeStartToken,
    )
}
_ERRORS: dict[str, type[CommandError]] = {
    c.__name__: c for c in (NotConnected, ChargerBusy, CommandTimeout, ClusterUnavailable)
}
Invalidator = Callable[[JsonObject], Awaitable[None]]


def encode_command(command: Command) -> JsonObject:
    return {"type": type(command).__name__, **dataclasses.asdict(command)}


def decode_command(data: JsonObject) -> Command:
    fields = dict(data)
    kind = _COMMANDS.get(str(fields.pop("type", "")))
    if kind is None:
        raise CommandRejected("InternalError", f"unknown command {data.get('type')!r}")
    command: Command = kind(**fields)
    return command


def encode_error(exc: BaseException) -> JsonObject:
    if isinstance(exc, CommandRejected):
        return {
            "kind": "CommandRejected",
            "code": exc.code,
            "description": exc.description,
            "details": exc.details,
        }
    kind = next((name for name, cls in _ERRORS.items() if type(exc) is cls), None)
    if kind is None:
        return {"kind": "CommandRejected", "code": "InternalError", "description": str(exc)}
    return {"kind": kind, "message": str(exc)}


def decode_error(data: JsonObject) -> CommandError:
    kind = data.get("kind")
    if kind == "CommandRejected":
        return CommandRejected(
            str(data.get("code")), str(data.get("description")), data.get("details")
        )
    cls = _ERRORS.get(str(kind), CommandTimeout)
    return cls(str(data.get("message", "")))


class ClusterNode:
    """This node's Redis channels, its presence claims, and the other nodes' questions."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        node_id: str,
        presence_ttl_s: float,
        registry: ConnectionRegistry,
        local: LocalDispatcher,
        call_timeout_s: float,
    ) -> None:
        self.redis = redis
        self.node_id = node_id
        self.presence = Presence(redis, prefix=prefix, node_id=node_id, ttl_s=presence_ttl_s)
        self._prefix = prefix
        self._ttl_s = presence_ttl_s
        self._registry = registry
        self._local = local
        self.call_timeout_s = call_timeout_s
        self._channel = self.channel_of(node_id)
        self._everyone = f"{prefix}:all"
        self._waiting: dict[str, asyncio.Future[JsonObject]] = {}
        self._invalidators: dict[str, list[Invalidator]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._listening = asyncio.Event()

    def channel_of(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}"

    # --- life -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listens on this node's channels (before the first connection is served) and keeps
        its presence claims alive."""
        self.spawn(self._listen_forever(), "cluster-listener")
        self.spawn(self._refresh_forever(), "cluster-presence")
        try:
            await self.redis.ping()
        except RedisError as exc:  # serve this node's chargers; join when Redis is back
            LOG.warning("cluster: Redis unreachable at start (%s): this node alone for now", exc)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):  # not wait_for: it may swallow a cancel (3.11)
                await self._listening.wait()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for waiting in self._waiting.values():
            waiting.cancel()
        with contextlib.suppress(RedisError):
            await self.redis.aclose()

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen_forever(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel, self._everyone)
                self._listening.set()
                while True:  # polled: the client's socket timeout must not end an idle wait
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                    if message is not None and message.get("type") == "message":
                        self._received(message["data"])
            except RedisError as exc:
                LOG.warning("cluster: Redis channel lost (%s); listening again", exc)
                await asyncio.sleep(RECONNECT_S)
            finally:
                with contextlib.suppress(RedisError, RuntimeError):
                    await pubsub.aclose()

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_s / 3)
            try:
                lost = await self.presence.refresh(self._registry.connected())
            except RedisError as exc:
                LOG.warning("cluster: presence not refreshed (%s)", exc)
                continue
            for charger_id in lost:  # a newer connection on another node: this one ends
                await self._close_local(charger_id, "connected to another CSMS node")

    # --- connections ------------------------------------------------------------------------

    async def opened(self, charger_id: str) -> None:
        """Claims the charger for this node; an older connection on another node is closed."""
        try:
            previous = await self.presence.claim(charger_id)
            if previous is not None:
                LOG.info("%s: was connected to node %s: closing that one", charger_id, previous)
                await self._publish(
                    self.channel_of(previous),
                    {
                        "op": "close",
                        "charger": charger_id,
                        "reason": "connected to another CSMS node",
                        "superseded": True,
                    },
                )
        except RedisError as exc:
            LOG.warning("%s: presence not claimed (%s); the refresher retries", charger_id, exc)

    async def closed(self, charger_id: str) -> bool:
        """Releases the claim if it is still this node's; False when another node holds the
        charger now (its newer connection is the one that counts)."""
        try:
            if await self.presence.release(charger_id):
                return True
            return await self.presence.holder(charger_id) is None
        except RedisError as exc:
            LOG.warning("%s: presence not released (%s); it expires", charger_id, exc)
            return True

    async def _close_local(self, charger_id: str, reason: str) -> None:
        link = self._registry.get(charger_id)
        if link is not None:
            await link.close(reason)

    # --- questions to other nodes -----------------------------------------------------------

    async def holder(self, charger_id: str) -> str | None:
        try:
            return await self.presence.holder(charger_id)
        except RedisError as exc:
            raise ClusterUnavailable(f"the cluster cannot be asked (Redis: {exc})") from exc

    async def ask(self, node: str, message: JsonObject) -> JsonObject:
        """Sends a question to ``node`` and waits for its answer (or raises its error)."""
        request_id = uuid.uuid4().hex
        waiting: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiting
        try:
            listeners = await self._publish(
                self.channel_of(node), {**message, "id": request_id, "reply": self.node_id}
            )
            if listeners == 0:  # the node is gone; its claim will expire
                raise NotConnected(f"charger {message.get('charger')!r} is not connected")
            try:  # not wait_for: an answer and a cancel in one turn, it kept the answer (3.11)
                async with asyncio.timeout(self.call_timeout_s + REPLY_MARGIN_S):
                    answer = await waiting
            except TimeoutError as exc:
                raise CommandTimeout(f"node {node} did not answer in time") from exc
        finally:
            self._waiting.pop(request_id, None)
        if "error" in answer:
            raise decode_error(answer["error"])
        result: JsonObject = answer["result"]
        return result

    async def tell(self, node: str, message: JsonObject) -> None:
        """Sends ``node`` a message nobody waits an answer for."""
        try:
            await self._publish(self.channel_of(node), message)
        except RedisError as exc:
            raise ClusterUnavailable(f"the cluster cannot be asked (Redis: {exc})") from exc

    async def _publish(self, channel: str, message: JsonObject) -> int:
        try:
            return int(await self.redis.publish(channel, json.dumps(message)))
        except RedisError as exc:
            raise ClusterUnavailable(f"the cluster cannot be asked (Redis: {exc})") from exc

    # --- cache invalidations ----------------------------------------------------------------

    def on_invalidate(self, kind: str, handler: Invalidator) -> None:
        """``handler`` runs on this node when another node announces a change of ``kind``."""
        self._invalidators.setdefault(kind, []).append(handler)

    async def invalidate(self, kind: str, **data: Any) -> None:
        """Tells every other node that ``kind`` changed (this node already knows)."""
        try:
            await self._publish(
                self._everyone,
                {"op": "invalidate", "from": self.node_id, "kind": kind, "data": data},
            )
        except ClusterUnavailable as exc:
            LOG.warning("cluster: invalidation %s not announced: %s", kind, exc)

    async def broadcast(self, command: Command) -> None:
        """Tells every other node to queue ``command`` to its accepted chargers."""
        try:
            await self._publish(
                self._everyone,
                {"op": "broadcast", "from": self.node_id, "command": encode_command(command)},
            )
        except ClusterUnavailable as exc:
            LOG.warning("cluster: broadcast not sent to the other nodes: %s", exc)

    # --- what arrives -----------------------------------------------------------------------

    def _received(self, raw: bytes | str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            LOG.warning("cluster: unreadable message %.200r", raw)
            return
        if not isinstance(message, dict):
            return
        op = message.get("op")
        if op == "reply":
            waiting = self._waiting.get(str(message.get("id")))
            if waiting is not None and not waiting.done():
                waiting.set_result(message)
            return
        if message.get("from") == self.node_id:  # our own broadcast or invalidation
            return
        self.spawn(self._handle(op, message), f"cluster-{op}")

    async def _handle(self, op: object, message: JsonObject) -> None:
        try:
            if op in ("send", "call"):
                await self._answer(message)
            elif op == "close":
                await self._close(message)
            elif op == "registration":
                link = self._registry.get(str(message.get("charger")))
                if link is not None:
                    link.registration_decided(str(message.get("registration")))
            elif op == "broadcast":
                self._local.broadcast(decode_command(message["command"]))
            elif op == "invalidate":
                for handler in self._invalidators.get(str(message.get("kind")), []):
                    await handler(message.get("data") or {})
        except Exception:  # one bad message must not stop the node's listener
            LOG.exception("cluster: %s message failed: %.300s", op, message)

    async def _close(self, message: JsonObject) -> None:
        charger_id = str(message.get("charger"))
        if message.get("superseded"):
            with contextlib.suppress(RedisError):
                if await self.presence.holder(charger_id) == self.node_id:
                    return  # it came back here since: this connection is the newest
        await self._close_local(charger_id, str(message.get("reason") or "closed"))

    async def _answer(self, message: JsonObject) -> None:
        charger_id = str(message.get("charger"))
        reply: JsonObject = {"op": "reply", "id": message.get("id")}
        try:
            if message["op"] == "send":
                outcome = await self._local.send(charger_id, decode_command(message["command"]))
                reply["result"] = dataclasses.asdict(outcome)
            else:
                reply["result"] = await self._local.call(
                    charger_id, str(message["action"]), dict(message["payload"])
                )
        except CommandError as exc:
            reply["error"] = encode_error(exc)
        except Exception as exc:  # answered, so the asking operator is not left waiting
            LOG.exception("%s: command from node %s failed", charger_id, message.get("reply"))
            reply["error"] = encode_error(exc)
        with contextlib.suppress(ClusterUnavailable):
            await self._publish(self.channel_of(str(message.get("reply"))), reply)


class ClusterDispatcher:
    """:class:`~csms.commands.CommandDispatcher` for a node of a cluster (module docstring)."""

    def __init__(self, node: ClusterNode, local: LocalDispatcher) -> None:
        self.node = node
        self._local = local

    async def _remote(self, charger_id: str) -> str:
        holder = await self.node.holder(charger_id)
        if holder is None or holder == self.node.node_id:
            raise NotConnected(f"charger {charger_id!r} is not connected")
        return holder

    async def send(self, charger_id: str, command: Command) -> Outcome:
        if self._local.is_connected(charger_id):
            return await self._local.send(charger_id, command)
        holder = await self._remote(charger_id)
        result = await self.node.ask(
            holder, {"op": "send", "charger": charger_id, "command": encode_command(command)}
        )
        return Outcome(**result)

    async def call(self, charger_id: str, action: str, payload: JsonObject) -> JsonObject:
        if self._local.is_connected(charger_id):
            return await self._local.call(charger_id, action, payload)
        holder = await self._remote(charger_id)
        return await self.node.ask(
            holder, {"op": "call", "charger": charger_id, "action": action, "payload": payload}
        )

    def is_connected(self, charger_id: str) -> bool:
        return self._local.is_connected(charger_id)

    def connected(self) -> list[str]:
        return self._local.connected()

    def broadcast(self, command: Command) -> int:
        self.node.spawn(self.node.broadcast(command), "cluster-broadcast")
        return self._local.broadcast(command)

    async def online(self, charger_ids: list[str]) -> set[str]:
        try:
            return set(await self.node.presence.holders(charger_ids))
        except RedisError as exc:
            LOG.warning("cluster: presence not read (%s): this node's connections only", exc)
            return await self._local.online(charger_ids)

    async def online_all(self) -> list[str]:
        try:
            return await self.node.presence.everyone()
        except RedisError as exc:
            LOG.warning("cluster: presence not read (%s): this node's connections only", exc)
            return self._local.connected()

    async def link_opened(self, link: ChargerLink) -> None:
        await self.node.opened(link.charger_id)

    async def link_closed(self, link: ChargerLink) -> bool:
        return await self.node.closed(link.charger_id)

    async def close(self, charger_id: str, reason: str) -> None:
        if self._local.is_connected(charger_id):
            await self._local.close(charger_id, reason)
            return
        with contextlib.suppress(NotConnected):
            holder = await self._remote(charger_id)
            await self.node.tell(holder, {"op": "close", "charger": charger_id, "reason": reason})

    async def registration_decided(self, charger_id: str, registration: str) -> None:
        if self._local.is_connected(charger_id):
            await self._local.registration_decided(charger_id, registration)
            return
        with contextlib.suppress(NotConnected):
            holder = await self._remote(charger_id)
            await self.node.tell(
                holder,
                {"op": "registration", "charger": charger_id, "registration": registration},
            )
