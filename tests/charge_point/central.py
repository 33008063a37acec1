"""A minimal OCPP central system written with nothing but the ``ocpp`` library.

It proves the charger depends on nothing non-standard: it accepts every charger, hands out
1.6 transaction ids, answers every message the charger sends, and records them in order so
tests can assert what arrived (and that nothing arrived twice).
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call_result as r16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call_result as r201
from websockets.exceptions import ConnectionClosed

from qr_extension.wire import ocpp_timestamp


def _now() -> str:
    return ocpp_timestamp(datetime.now(UTC))


@dataclass
class Received:
    charger: str
    action: str
    payload: dict[str, Any]
    at: float = field(default_factory=time.time)  # when it arrived (wall clock)


@dataclass
class Central:
    """Shared state of the test CSMS: every message received, live connections."""

    messages: list[Received] = field(default_factory=list)
    connections: dict[str, Any] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    started: dict[tuple[str, int, str, str], int] = field(default_factory=dict)
    port: int = 0
    data_transfer_status: str = "Accepted"
    start_status: str = "Accepted"  # idTagInfo status of transaction starts
    heartbeat_interval: int = 300  # the BootNotification answer's interval

    def record(self, charger: str, action: str, **payload: Any) -> None:
        self.messages.append(Received(charger, action, payload))

    def of(self, action: str, charger: str | None = None) -> list[dict[str, Any]]:
        return [
            m.payload
            for m in self.messages
            if m.action == action and (charger is None or m.charger == charger)
        ]

    def actions(self, charger: str | None = None) -> list[str]:
        return [m.action for m in self.messages if charger is None or m.charger == charger]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"


class Central16(Cp16):  # type: ignore[misc]
    def __init__(self, cp_id: str, ws: Any, central: Central) -> None:
        super().__init__(cp_id, ws)
        self.central = central

    @on("BootNotification")
    def boot(self, **kw: Any) -> Any:
        self.central.record(self.id, "BootNotification", **kw)
        return r16.BootNotification(
            current_time=_now(), interval=self.central.heartbeat_interval, status="Accepted"
        )

    @on("Heartbeat")
    def heartbeat(self) -> Any:
        self.central.record(self.id, "Heartbeat")
        return r16.Heartbeat(current_time=_now())

    @on("StatusNotification")
    def status(self, **kw: Any) -> Any:
        self.central.record(self.id, "StatusNotification", **kw)
        return r16.StatusNotification()

    @on("Authorize")
    def authorize(self, id_tag: str) -> Any:
        self.central.record(self.id, "Authorize", id_tag=id_tag)
        ok = id_tag.startswith("OK")
        return r16.Authorize(id_tag_info={"status": "Accepted" if ok else "Invalid"})

    @on("StartTransaction")
    def on_start_transaction(self, **kw: Any) -> Any:
        self.central.record(self.id, "StartTransaction", **kw)
        key = (self.id, kw["connector_id"], kw["id_tag"], kw["timestamp"])  # deduplicate
        txn = self.central.started.setdefault(key, next(self.central.ids))
        info = {"status": self.central.start_status}
        return r16.StartTransaction(transaction_id=txn, id_tag_info=info)

    @on("MeterValues")
    def meter_values(self, **kw: Any) -> Any:
        self.central.record(self.id, "MeterValues", **kw)
        return r16.MeterValues()

    @on("StopTransaction")
    def on_stop_transaction(self, **kw: Any) -> Any:
        self.central.record(self.id, "StopTransaction", **kw)
        return r16.StopTransaction(id_tag_info={"status": "Accepted"})

    @on("DataTransfer")
    def data_transfer(self, **kw: Any) -> Any:
        self.central.record(self.id, "DataTransfer", **kw)
        return r16.DataTransfer(status=self.central.data_transfer_status)


class Central201(Cp201):  # type: ignore[misc]
    def __init__(self, cp_id: str, ws: Any, central: Central) -> None:
        super().__init__(cp_id, ws)
        self.central = central

    @on("BootNotification")
    def boot(self, **kw: Any) -> Any:
        self.central.record(self.id, "BootNotification", **kw)
        return r201.BootNotification(
            current_time=_now(), interval=self.central.heartbeat_interval, status="Accepted"
        )

    @on("Heartbeat")
    def heartbeat(self) -> Any:
        self.central.record(self.id, "Heartbeat")
        return r201.Heartbeat(current_time=_now())

    @on("StatusNotification")
    def status(self, **kw: Any) -> Any:
        self.central.record(self.id, "StatusNotification", **kw)
        return r201.StatusNotification()

    @on("Authorize")
    def authorize(self, **kw: Any) -> Any:
        self.central.record(self.id, "Authorize", **kw)
        ok = kw["id_token"]["id_token"].startswith("OK")
        return r201.Authorize(id_token_info={"status": "Accepted" if ok else "Invalid"})

    @on("TransactionEvent")
    def transaction_event(self, **kw: Any) -> Any:
        self.central.record(self.id, "TransactionEvent", **kw)
        if kw["event_type"] == "Started":
            return r201.TransactionEvent(id_token_info={"status": self.central.start_status})
        return r201.TransactionEvent()

    @on("MeterValues")
    def meter_values(self, **kw: Any) -> Any:
        self.central.record(self.id, "MeterValues", **kw)
        return r201.MeterValues()

    @on("DataTransfer")
    def data_transfer(self, **kw: Any) -> Any:
        self.central.record(self.id, "DataTransfer", **kw)
        return r201.DataTransfer(status=self.central.data_transfer_status)


async def serve(central: Central, port: int = 0, *, tls: ssl.SSLContext | None = None) -> Any:
    """Starts the central system on ``port`` (0: a free one; ``tls``: wss://); returns the
    websockets server."""

    async def handler(ws: Any) -> None:
        cp_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        cls = Central16 if ws.subprotocol == "ocpp1.6" else Central201
        cp = cls(cp_id, ws, central)
        central.connections[cp_id] = cp
        try:
            await cp.start()
        except ConnectionClosed:
            pass
        finally:
            if central.connections.get(cp_id) is cp:
                del central.connections[cp_id]

    server = await websockets.serve(
        handler,
        "127.0.0.1",
        port,
        subprotocols=["ocpp1.6", "ocpp2.0.1"],  # type: ignore[list-item]
        ssl=tls,
    )
    central.port = server.sockets[0].getsockname()[1]
    return server


async def until(predicate: Any, limit_s: float = 10.0, what: str = "condition") -> None:
    """Polls ``predicate`` (sync) until true; fails the test after ``limit_s`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
