"""A tiny stand-in CSMS for ``--self-test``: answers every CALL with a minimal valid CALLRESULT.

It checks nothing but the framing and the subprotocol, so a self-test measures the generator
itself (and gives a floor for what the generator can offer on this machine). It is run as its
own process by ``ocpp_load.py --stand-in-server`` so that its memory is measured the same way
as the real CSMS's.
"""

from __future__ import annotations

import asyncio
import itertools
import signal

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from benchmarks.ocpp_load_frames import (
    CALL,
    SUBPROTOCOLS,
    VERSION_OF_SUBPROTOCOL,
    FrameError,
    decode,
    encode_error,
    encode_result,
    stand_in_answer,
)


async def _handle(ws: ServerConnection, counter: itertools.count[int]) -> None:
    path = ws.request.path if ws.request is not None else ""
    version = VERSION_OF_SUBPROTOCOL.get(ws.subprotocol or "")
    if version is None or not path.startswith("/ocpp/"):
        await ws.close(1002, "no agreed OCPP subprotocol")
        return
    try:
        async for text in ws:
            try:
                frame = decode(text)
            except FrameError:
                continue
            if frame.kind != CALL:
                continue
            if not frame.action:
                await ws.send(encode_error(frame.message_id, "FormatViolation"))
                continue
            answer = stand_in_answer(version, frame.action, frame.payload, next(counter))
            await ws.send(encode_result(frame.message_id, answer))
    except ConnectionClosed:
        pass


async def serve_stand_in(port: int) -> None:
    """Serves on 127.0.0.1:``port`` until SIGTERM or SIGINT."""
    counter = itertools.count(1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def handler(ws: ServerConnection) -> None:
        await _handle(ws, counter)

    async with serve(
        handler,
        "127.0.0.1",
        port,
        subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS.values()],
        compression=None,
        ping_interval=None,
        backlog=8192,
    ):
        await stop.wait()
