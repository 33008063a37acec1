"""The commands the CSMS sends a charger, and delivering them: the seam a multi-node CSMS
will route through.

A command is a version-neutral value (:data:`Command`) and its answer an :class:`Outcome`;
which OCPP message carries it in 1.6 or 2.0.1, and how the charger's answer reads, is the
:class:`CommandCodec`'s business (:mod:`csms.protocol.commands`), so no caller knows either
version's field names. The operator's own raw OCPP CALLs (:meth:`CommandDispatcher.call`) pass
through as given.

The API and the money side only see :class:`CommandDispatcher`. :class:`LocalDispatcher`
finds the charger's connection in this process's :class:`ConnectionRegistry`; in a cluster,
:class:`csms.cluster.node.ClusterDispatcher` looks up which node holds the socket and forwards
the command there, with the same errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from csms.errors import ChargerBusy, NotConnected

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class StartCharging:
    """Start a transaction for ``id_token`` (an order id: the CSMS authorizes it when the
    charger asks), on ``evse_id`` or on an EVSE the charger chooses."""

    id_token: str
    evse_id: int | None = None


@dataclass(frozen=True, slots=True)
class StopCharging:
    """Stop the transaction the charger reported as ``transaction_id``."""

    transaction_id: str


@dataclass(frozen=True, slots=True)
class SetIdentificationSecret:
    """Install the key of the charger's dynamic identification code (hex)."""

    secret_hex: str


@dataclass(frozen=True, slots=True)
class SendVendorData:
    """One of our extension's vendor messages (``message_id``, ``data``) to the charger."""

    message_id: str
    data: str


@dataclass(frozen=True, slots=True)
class RevokeStartToken:
    """Revoke, at the charger, the start token of order ``order_id`` (its ``jti``), which
    expires at ``expires_at`` (epoch seconds: the charger may forget the revocation once no
    clock it accepts can reach that time). The charger answers ``Accepted`` only once the
    revocation is stored durably and the token was never used there."""

    order_id: str
    expires_at: int


Command = StartCharging | StopCharging | SetIdentificationSecret | SendVendorData | RevokeStartToken


@dataclass(frozen=True, slots=True)
class Outcome:
    """The charger's answer to a command.

    ``accepted`` says whether it will do it; ``status`` is the charger's own word for the
    answer (``Accepted``, ``Rejected``, ``RebootRequired``, ``UnknownVariable``, ...) and
    ``reason`` the reason code it gave, if any; ``action`` names the OCPP message that carried
    the command, for logs and answers.
    """

    action: str
    status: str
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted"


class CommandCodec(Protocol):
    """Turns a command into the CALL of one OCPP version, and that version's answer into an
    :class:`Outcome` (:mod:`csms.protocol.commands`)."""

    def request(self, command: Command, version: str) -> tuple[str, JsonObject]:
        """The action and camelCase payload that carry ``command`` in OCPP ``version``."""
        ...

    def outcome(self, command: Command, version: str, answer: JsonObject) -> Outcome:
        """What the charger's answer payload to :meth:`request`'s CALL says."""
        ...


class ChargerLink(Protocol):
    """One open connection to a charger that can carry CSMS-initiated calls."""

    @property
    def charger_id(self) -> str: ...

    @property
    def ocpp_version(self) -> str: ...

    async def request(self, action: str, payload: JsonObject, *, timeout_s: float) -> JsonObject:
        """Sends a CALL from the connection's own task; the charger's answer payload.

        Raises :class:`~csms.errors.ChargerBusy`, :class:`~csms.errors.CommandTimeout` or
        :class:`~csms.errors.CommandRejected`.
        """
        ...

    def post(self, action: str, payload: JsonObject) -> None:
        """Queues a CALL whose answer nobody waits for (logged); may raise ChargerBusy."""
        ...

    @property
    def accepted(self) -> bool:
        """Whether the charger's registration lets it work on this connection."""
        ...

    def registration_decided(self, registration: str) -> None:
        """The operator changed the charger's registration while it is connected."""
        ...

    async def close(self, reason: str) -> None: ...


class ConnectionRegistry:
    """The chargers connected to this process; a newer connection replaces an older one."""

    def __init__(self) -> None:
        self._links: dict[str, ChargerLink] = {}

    def attach(self, link: ChargerLink) -> ChargerLink | None:
        """Registers ``link``; returns the connection it replaces, which the caller closes."""
        old = self._links.get(link.charger_id)
        self._links[link.charger_id] = link
        return old if old is not link else None

    def detach(self, link: ChargerLink) -> bool:
        """Forgets ``link`` if it is still the current one (a replaced link changes nothing)."""
        if self._links.get(link.charger_id) is link:
            del self._links[link.charger_id]
            return True
        return False

    def get(self, charger_id: str) -> ChargerLink | None:
        return self._links.get(charger_id)

    def connected(self) -> list[str]:
        return list(self._links)

    def __len__(self) -> int:
        return len(self._links)


class CommandDispatcher(Protocol):
    """Sends commands to a charger wherever its socket is, and returns the answers.

    ``send`` and ``call`` raise :class:`~csms.errors.NotConnected`,
    :class:`~csms.errors.ChargerBusy`, :class:`~csms.errors.CommandTimeout` or
    :class:`~csms.errors.CommandRejected` (a CALLERROR, or an invalid request or answer).
    """

    async def send(self, charger_id: str, command: Command) -> Outcome:
        """Sends ``command`` in the charger's OCPP version and waits for its answer."""
        ...

    async def call(self, charger_id: str, action: str, payload: JsonObject) -> JsonObject:
        """Sends the operator's own CALL (camelCase, for the charger's version) as given, and
        returns the charger's answer payload as it came."""
        ...

    def is_connected(self, charger_id: str) -> bool: ...

    def connected(self) -> list[str]: ...

    def broadcast(self, command: Command) -> int:
        """Queues ``command`` to every connected charger that is accepted, without waiting;
        how many of this node's chargers got it (a charger not accepted is not sent our keys
        or anything unasked; in a cluster every other node queues it to its own too)."""
        ...

    async def online(self, charger_ids: list[str]) -> set[str]:
        """Those of ``charger_ids`` connected to any node (``is_connected`` is this node)."""
        ...

    async def online_all(self) -> list[str]:
        """Every charger connected to any node."""
        ...

    async def link_opened(self, link: ChargerLink) -> None:
        """A connection was registered here (a cluster claims the charger for this node and
        closes an older connection on another)."""
        ...

    async def link_closed(self, link: ChargerLink) -> bool:
        """The charger's current connection here ended; whether it was the charger's newest
        connection anywhere (False: it has connected to another node since)."""
        ...

    async def close(self, charger_id: str, reason: str) -> None:
        """Closes the charger's connection wherever it is (nothing if it has none)."""
        ...

    async def registration_decided(self, charger_id: str, registration: str) -> None:
        """Tells the charger's connection, wherever it is, that the operator set its
        registration (:meth:`ChargerLink.registration_decided`)."""
        ...


class LocalDispatcher:
    """:class:`CommandDispatcher` for the connections held by this process."""

    def __init__(
        self, registry: ConnectionRegistry, *, timeout_s: float, codec: CommandCodec
    ) -> None:
        self._registry = registry
        self._timeout_s = timeout_s
        self._codec = codec

    def _link(self, charger_id: str) -> ChargerLink:
        link = self._registry.get(charger_id)
        if link is None:
            raise NotConnected(f"charger {charger_id!r} is not connected")
        return link

    async def send(self, charger_id: str, command: Command) -> Outcome:
        link = self._link(charger_id)
        version = link.ocpp_version
        action, payload = self._codec.request(command, version)
        answer = await link.request(action, payload, timeout_s=self._timeout_s)
        return self._codec.outcome(command, version, answer)

    async def call(self, charger_id: str, action: str, payload: JsonObject) -> JsonObject:
        return await self._link(charger_id).request(action, payload, timeout_s=self._timeout_s)

    def is_connected(self, charger_id: str) -> bool:
        return self._registry.get(charger_id) is not None

    def connected(self) -> list[str]:
        return self._registry.connected()

    def broadcast(self, command: Command) -> int:
        sent = 0
        for charger_id in self._registry.connected():
            link = self._registry.get(charger_id)
            if link is None or not link.accepted:
                continue
            try:
                link.post(*self._codec.request(command, link.ocpp_version))
                sent += 1
            except ChargerBusy:
                continue
        return sent

    async def online(self, charger_ids: list[str]) -> set[str]:
        return {c for c in charger_ids if self._registry.get(c) is not None}

    async def online_all(self) -> list[str]:
        return self._registry.connected()

    async def link_opened(self, link: ChargerLink) -> None:
        return None

    async def link_closed(self, link: ChargerLink) -> bool:
        return True

    async def close(self, charger_id: str, reason: str) -> None:
        link = self._registry.get(charger_id)
        if link is not None:
            await link.close(reason)

    async def registration_decided(self, charger_id: str, registration: str) -> None:
        link = self._registry.get(charger_id)
        if link is not None:
            link.registration_decided(registration)
