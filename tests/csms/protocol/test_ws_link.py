"""The direct frame link under the OCPP endpoint: frames bypass ASGI after the handshake, a
flooding peer is still held back, and the ASGI reads of a connection keep working."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.typing import Subprotocol

from csms.errors import ConnectionEnded
from csms.protocol import endpoint
from csms.ws_link import INBOX_HIGH, FrameInbox, as_event

from ..conftest import LiveCsms, basic_auth


async def test_the_inbox_hands_items_over_in_order_and_wakes_its_reader() -> None:
    inbox = FrameInbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()
    inbox.put_nowait("first")
    inbox.put_nowait(b"second")
    assert await reader == "first"
    assert len(inbox) == 1 and not inbox.empty()
    assert as_event(await inbox.get()) == {"type": "websocket.receive", "bytes": b"second"}
    assert as_event("t") == {"type": "websocket.receive", "text": "t"}
    assert inbox.empty()


async def test_frames_of_an_accepted_charger_take_the_direct_link(
    csms: LiveCsms, monkeypatch: pytest.MonkeyPatch
) -> None:
    await csms.add_charger("DIRECT")
    links: list[object] = []
    init = endpoint.WebSocketTransport.__init__

    def spy(self: endpoint.WebSocketTransport, *args: object) -> None:
        init(self, *args)  # type: ignore[arg-type]
        links.append(self._link)

    monkeypatch.setattr(endpoint.WebSocketTransport, "__init__", spy)
    async with websockets.connect(
        csms.ws_url("DIRECT"),
        subprotocols=[Subprotocol("ocpp1.6")],
        additional_headers=basic_auth("DIRECT"),
    ) as ws:
        # more frames at once than the inbox holds before reading pauses: all answered
        for n in range(3 * INBOX_HIGH):
            await ws.send(f'[2,"hb{n}","Heartbeat",{{}}]')
        answers = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(3 * INBOX_HIGH)]
        assert [a[1] for a in answers] == [f"hb{n}" for n in range(3 * INBOX_HIGH)]
        assert all(a[0] == 3 and "currentTime" in a[2] for a in answers)
        await ws.send(b'[2,"bin","Heartbeat",{}]')  # a binary frame is read as UTF-8 text
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert answer[1] == "bin" and answer[0] == 3
    assert len(links) == 1 and links[0] is not None


async def test_the_link_ends_when_the_charger_leaves(csms: LiveCsms) -> None:
    await csms.add_charger("LEAVES")
    ws = await websockets.connect(
        csms.ws_url("LEAVES"),
        subprotocols=[Subprotocol("ocpp2.0.1")],
        additional_headers=basic_auth("LEAVES"),
    )
    await ws.send('[2,"hb","Heartbeat",{}]')
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))[0] == 3
    cp = csms.ctx.registry.get("LEAVES")
    assert cp is not None
    await ws.close()
    for _ in range(250):
        if csms.ctx.registry.get("LEAVES") is None:
            break
        await asyncio.sleep(0.02)
    assert csms.ctx.registry.get("LEAVES") is None
    with pytest.raises(ConnectionEnded):
        await cp._transport.send('[3,"x",{}]')  # type: ignore[attr-defined]


async def test_an_accepted_connection_keeps_no_handshake(csms: LiveCsms) -> None:
    await csms.add_charger("SLIM")
    async with websockets.connect(
        csms.ws_url("SLIM"),
        subprotocols=[Subprotocol("ocpp1.6")],
        additional_headers={**basic_auth("SLIM"), "X-Padding": "p" * 2000},
    ) as ws:
        await ws.send('[2,"hb","Heartbeat",{}]')
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))[0] == 3
        cp = csms.ctx.registry.get("SLIM")
        assert cp is not None
        link = cp._transport._link  # type: ignore[attr-defined]
        protocol = link._protocol
        assert protocol.request is None and protocol.response is None
        assert protocol.scope["headers"] == []
        await ws.send('[2,"hb2","Heartbeat",{}]')  # still served
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))[1] == "hb2"
