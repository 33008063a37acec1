"""Minimal third-party-style central systems, written with the ``ocpp`` library the way its own
examples are: a ``ChargePoint`` subclass with a few ``@on`` handlers behind ``websockets.serve``,
and nothing of ours. Whatever a class has no handler for, the library answers with a
``NotImplemented`` CALLERROR, as such a central system would.

* ``BootOnly16`` / ``BootOnly201``: handle BootNotification and Heartbeat only.
* ``Refusing16`` / ``Refusing201``: accept BootNotification and answer every other CALL with a
  CALLERROR: ``NotSupported`` for DataTransfer, ``InternalError`` for Heartbeat and the
  transaction messages, the library's ``NotImplemented`` for the rest.
* ``TokenKeyed201``: knows tokens by (value, type), as the 2.0.1 specification keys them, and
  answers ``Unknown`` for any other pair.
* ``Reporting201``: asks for the base report right after boot (B07) and collects NotifyReport;
  ``PendingReporting201`` keeps the charger Pending until it has the report (B02).
* ``Registering16`` / ``Registering201``: answer BootNotification with ``Seen.registration``
  and ``Seen.boot_interval`` (an operator's decision the test changes) and acknowledge
  statuses; the test sends their commands (TriggerMessage, remote start) itself.

Every CALL that reaches a central system is recorded, answered or not, so a test can assert
what the charger sent; ``connections`` counts WebSocket connections per charger.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.exceptions import InternalError, NotSupportedError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call_result as r16
from ocpp.v16.enums import Action as A16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as c201
from ocpp.v201 import call_result as r201
from ocpp.v201.enums import Action as A201
from websockets.exceptions import ConnectionClosed

from qr_extension.wire import ocpp_timestamp

HEARTBEAT_S = 1  # the interval every central system here gives in its boot answer


def _now() -> str:
    return ocpp_timestamp(datetime.now(UTC))


@dataclass
class Seen:
    """What a central system saw: every CALL (charger id, action, payload), connections."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    connections: dict[str, int] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)
    port: int = 0
    registration: str = "Accepted"  # the boot answer of the Registering centrals
    boot_interval: int = HEARTBEAT_S

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    def of(self, action: str) -> list[dict[str, Any]]:
        """The payloads (as sent, camelCase) of every ``action`` CALL received, in order."""
        return [payload for _, a, payload in self.calls if a == action]

    def count(self, action: str) -> int:
        return len(self.of(action))

    def data_transfers(self, message_id: str) -> list[dict[str, Any]]:
        return [p for p in self.of("DataTransfer") if p.get("messageId") == message_id]


class _Recording:
    """Records every incoming CALL before the library routes it (handled or not)."""

    id: str
    seen: Seen

    async def route_message(self, raw_msg: str) -> None:
        frame = json.loads(raw_msg)
        if frame[0] == 2:
            self.seen.calls.append((self.id, frame[2], frame[3]))
        await super().route_message(raw_msg)  # type: ignore[misc]


class BootOnly16(_Recording, Cp16):  # type: ignore[misc]
    def __init__(self, cp_id: str, ws: Any, seen: Seen) -> None:
        super().__init__(cp_id, ws)
        self.seen = seen

    @on(A16.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        return r16.BootNotification(current_time=_now(), interval=HEARTBEAT_S, status="Accepted")

    @on(A16.heartbeat)
    def on_heartbeat(self) -> Any:
        return r16.Heartbeat(current_time=_now())


class BootOnly201(_Recording, Cp201):  # type: ignore[misc]
    def __init__(self, cp_id: str, ws: Any, seen: Seen) -> None:
        super().__init__(cp_id, ws)
        self.seen = seen

    @on(A201.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        return r201.BootNotification(current_time=_now(), interval=HEARTBEAT_S, status="Accepted")

    @on(A201.heartbeat)
    def on_heartbeat(self) -> Any:
        return r201.Heartbeat(current_time=_now())


def _broken() -> Any:
    raise InternalError(description="this central system cannot process it")


def _not_supported() -> Any:
    raise NotSupportedError(description="no vendor extensions here")


class Refusing16(_Recording, Cp16):  # type: ignore[misc]
    def __init__(self, cp_id: str, ws: Any, seen: Seen) -> None:
        super().__init__(cp_id, ws)
        self.seen = seen

    @on(A16.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        return r16.BootNotification(current_time=_now(), interval=HEARTBEAT_S, status="Accepted")

    @on(A16.heartbeat)
    def on_heartbeat(self) -> Any:
        return _broken()

    @on(A16.start_transaction)
    def on_start_transaction(self, **_: Any) -> Any:
        return _broken()

    @on(A16.meter_values)
    def on_meter_values(self, **_: Any) -> Any:
        return _broken()

    @on(A16.stop_transaction)
    def on_stop_transaction(self, **_: Any) -> Any:
        return _broken()

    @on(A16.data_transfer)
    def on_data_transfer(self, **_: Any) -> Any:
        return _not_supported()


class Refusing201(_Recording, Cp201):  # type: ignore[misc]
    def __init__(self, cp_id: str, ws: Any, seen: Seen) -> None:
        super().__init__(cp_id, ws)
        self.seen = seen

    @on(A201.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        return r201.BootNotification(current_time=_now(), interval=HEARTBEAT_S, status="Accepted")

    @on(A201.heartbeat)
    def on_heartbeat(self) -> Any:
        return _broken()

    @on(A201.transaction_event)
    def on_transaction_event(self, **_: Any) -> Any:
        return _broken()

    @on(A201.data_transfer)
    def on_data_transfer(self, **_: Any) -> Any:
        return _not_supported()


class Registering16(BootOnly16):
    @on(A16.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        seen = self.seen
        return r16.BootNotification(
            current_time=_now(), interval=seen.boot_interval, status=seen.registration
        )

    @on(A16.status_notification)
    def on_status(self, **_: Any) -> Any:
        return r16.StatusNotification()


class Registering201(BootOnly201):
    @on(A201.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        seen = self.seen
        return r201.BootNotification(
            current_time=_now(), interval=seen.boot_interval, status=seen.registration
        )

    @on(A201.status_notification)
    def on_status(self, **_: Any) -> Any:
        return r201.StatusNotification()


KNOWN_TOKENS = {("CARD01", "ISO14443"), ("REMOTE1", "ISO14443"), ("ORDERQ", "Central")}


class TokenKeyed201(BootOnly201):
    """Authorizes a token only under the type it was registered with (``KNOWN_TOKENS``)."""

    def _info(self, id_token: dict[str, Any]) -> dict[str, str]:
        known = (id_token["id_token"], id_token["type"]) in KNOWN_TOKENS
        return {"status": "Accepted" if known else "Unknown"}

    @on(A201.status_notification)
    def on_status(self, **_: Any) -> Any:
        return r201.StatusNotification()

    @on(A201.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        return r201.Authorize(id_token_info=self._info(id_token))

    @on(A201.transaction_event)
    def on_transaction_event(self, id_token: dict[str, Any] | None = None, **_: Any) -> Any:
        if id_token is None:
            return r201.TransactionEvent()
        return r201.TransactionEvent(id_token_info=self._info(id_token))


class Reporting201(BootOnly201):
    """Sends GetBaseReport(FullInventory) right after boot; keeps the answer and the reports."""

    REQUEST_ID = 7

    def __init__(self, cp_id: str, ws: Any, seen: Seen) -> None:
        super().__init__(cp_id, ws, seen)
        self.answers: list[Any] = []
        self.reports: list[dict[str, Any]] = []

    @after(A201.boot_notification)
    async def ask_for_report(self, **_: Any) -> None:
        answer = await self.call(
            c201.GetBaseReport(request_id=self.REQUEST_ID, report_base="FullInventory")
        )
        self.answers.append(answer)

    @on(A201.notify_report)
    def on_notify_report(self, **kw: Any) -> Any:
        self.reports.append(kw)
        return r201.NotifyReport()

    @on(A201.status_notification)
    def on_status(self, **_: Any) -> Any:
        return r201.StatusNotification()


class PendingReporting201(Reporting201):
    """Keeps the charger Pending until its base report is complete (B02 then B07), then
    accepts it; asks for the report only while the charger is pending."""

    def _have_report(self) -> bool:
        return bool(self.reports) and self.reports[-1]["tbc"] is False

    @on(A201.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        status = "Accepted" if self._have_report() else "Pending"
        return r201.BootNotification(current_time=_now(), interval=HEARTBEAT_S, status=status)

    @after(A201.boot_notification)
    async def ask_for_report(self, **_: Any) -> None:
        if not self._have_report():
            await Reporting201.ask_for_report(self)


async def serve(seen: Seen, cls16: type | None, cls201: type | None) -> Any:
    """Serves ``cls16`` on ``ocpp1.6`` and ``cls201`` on ``ocpp2.0.1`` on a free port."""

    async def on_connect(ws: Any) -> None:
        cp_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        cls = cls16 if ws.subprotocol == "ocpp1.6" else cls201
        assert cls is not None
        seen.connections[cp_id] = seen.connections.get(cp_id, 0) + 1
        cp = cls(cp_id, ws, seen)
        seen.live[cp_id] = cp
        try:
            await cp.start()
        except ConnectionClosed:
            pass
        finally:
            if seen.live.get(cp_id) is cp:
                del seen.live[cp_id]

    protocols = [p for p, c in (("ocpp1.6", cls16), ("ocpp2.0.1", cls201)) if c is not None]
    server = await websockets.serve(on_connect, "127.0.0.1", 0, subprotocols=protocols)
    seen.port = server.sockets[0].getsockname()[1]
    return server


async def settle(seconds: float) -> None:
    """Lets the charger and the central system talk for ``seconds`` (real time)."""
    await asyncio.sleep(seconds)
