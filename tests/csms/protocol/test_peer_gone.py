"""A charger that leaves while the CSMS is answering: one log line, nothing more sent."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import pytest
import websockets
from websockets.typing import Subprotocol

from csms.context import CsmsContext
from csms.errors import ChargerBusy, ConnectionEnded, NotConnected
from csms.protocol import provisioning
from csms.protocol.base import OUTBOX_SIZE, CsmsChargePoint
from csms.protocol.endpoint import WebSocketTransport

from ..conftest import LiveCsms, basic_auth


async def _until(predicate: Any, limit_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1"])
async def test_a_charger_that_leaves_before_its_answer_costs_one_log_line(
    csms: LiveCsms,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    subprotocol: str,
) -> None:
    await csms.add_charger("GONE")
    entered, release = asyncio.Event(), asyncio.Event()
    heartbeat = provisioning.heartbeat

    async def slow_heartbeat(ctx: CsmsContext, charger_id: str) -> datetime:
        entered.set()
        await release.wait()  # the handler is still busy when the charger leaves
        return await heartbeat(ctx, charger_id)

    sent: list[str] = []
    send = WebSocketTransport.send

    async def counted_send(self: WebSocketTransport, message: str) -> None:
        sent.append(message)
        await send(self, message)

    logged: list[tuple[str, str]] = []  # what the support log was given: (direction, frame)
    record = csms.ctx.message_log.record
    monkeypatch.setattr(
        csms.ctx.message_log,
        "record",
        lambda charger_id, direction, frame: (
            logged.append((direction, frame)) or record(charger_id, direction, frame)
        ),
    )
    monkeypatch.setattr(provisioning, "heartbeat", slow_heartbeat)
    monkeypatch.setattr(WebSocketTransport, "send", counted_send)
    caplog.set_level(logging.DEBUG)

    ws = await websockets.connect(
        csms.ws_url("GONE"),
        subprotocols=[Subprotocol(subprotocol)],
        additional_headers=basic_auth("GONE"),
    )
    await ws.send('[2,"hb-gone","Heartbeat",{}]')
    await asyncio.wait_for(entered.wait(), 5)
    await ws.close()  # gone before the answer
    release.set()
    await _until(lambda: csms.ctx.registry.get("GONE") is None)

    assert len(sent) == 1 and sent[0].startswith('[3,"hb-gone"')  # one try, no CALLERROR after
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    server = [r for r in caplog.records if r.name.split(".")[0] in ("csms", "ocpp", "uvicorn")]
    gone = [r for r in server if "hb-gone" in r.getMessage() or "left" in r.getMessage()]
    assert len(gone) == 1, [r.getMessage() for r in server]
    line = gone[0]
    assert line.levelno in (logging.INFO, logging.WARNING)
    assert "GONE" in line.getMessage() and "Heartbeat" in line.getMessage()
    assert not any("send [3" in r.getMessage() for r in server)  # not logged as sent
    assert [direction for direction, _ in logged] == ["in"]  # the answer never left


class _ClosedTransport:
    """A socket the charger has already closed: every send fails."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.sends = 0

    async def recv(self) -> str:
        raise ConnectionEnded("closed")

    async def send(self, message: str) -> None:
        self.sends += 1
        raise ConnectionEnded("closed")

    async def close(self, reason: str) -> None:
        self.closed.set()


class _Link(CsmsChargePoint):
    _ocpp_version = "1.6"


async def test_a_command_to_a_charger_that_left_fails_as_not_connected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = _ClosedTransport()
    link = _Link("LEFT", transport, response_timeout_s=5, max_frame_bytes=65536)
    outbox = asyncio.create_task(link.run_outbox())
    with pytest.raises(NotConnected):
        await link.request("Reset", {"type": "Soft"}, timeout_s=5)
    with pytest.raises(ConnectionEnded):
        await outbox  # the outbox stops: nothing more is tried on that socket
    assert transport.sends == 1
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_full_outbox_refuses_more_and_a_lost_connection_fails_what_waited() -> None:
    link = _Link("FULL", _ClosedTransport(), response_timeout_s=5, max_frame_bytes=65536)
    waiting = [
        asyncio.create_task(link.request("Reset", {"type": "Soft"}, timeout_s=5))
        for _ in range(OUTBOX_SIZE)
    ]
    await asyncio.sleep(0)
    with pytest.raises(ChargerBusy):
        link.post("Reset", {"type": "Hard"})
    link.fail_pending()  # nobody sent them: each fails at once, none waits for its timeout
    for task in waiting:
        with pytest.raises(NotConnected):
            await task
