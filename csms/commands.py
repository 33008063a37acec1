"""Delivering a command to a charger: the one seam a multi-node CSMS will route through.

The operator API only sees :class:`CommandDispatcher`. Today :class:`LocalDispatcher` finds
the charger's connection in this process's :class:`ConnectionRegistry`; a clustered version
would look up which node holds the socket and forward the request there, with the same
errors.
"""

from __future__ import annotations

from typing import Any, Protocol

from csms.errors import ChargerBusy, NotConnected

JsonObject = dict[str, Any]


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
    """Sends an OCPP CALL to a charger wherever its socket is, and returns the answer."""

    async def send(self, charger_id: str, action: str, payload: JsonObject) -> JsonObject: ...

    def is_connected(self, charger_id: str) -> bool: ...

    def connected(self) -> list[str]: ...

    def broadcast(self, action: str, payload: JsonObject) -> int:
        """Queues a CALL to every connected charger that is accepted, without waiting; how
        many got it (a charger not accepted is not sent our keys or anything unasked)."""
        ...


class LocalDispatcher:
    """:class:`CommandDispatcher` for the connections held by this process."""

    def __init__(self, registry: ConnectionRegistry, *, timeout_s: float) -> None:
        self._registry = registry
        self._timeout_s = timeout_s

    async def send(self, charger_id: str, action: str, payload: JsonObject) -> JsonObject:
        link = self._registry.get(charger_id)
        if link is None:
            raise NotConnected(f"charger {charger_id!r} is not connected")
        return await link.request(action, payload, timeout_s=self._timeout_s)

    def is_connected(self, charger_id: str) -> bool:
        return self._registry.get(charger_id) is not None

    def connected(self) -> list[str]:
        return self._registry.connected()

    def broadcast(self, action: str, payload: JsonObject) -> int:
        sent = 0
        for charger_id in self._registry.connected():
            link = self._registry.get(charger_id)
            if link is None or not link.accepted:
                continue
            try:
                link.post(action, payload)
                sent += 1
            except ChargerBusy:
                continue
        return sent
