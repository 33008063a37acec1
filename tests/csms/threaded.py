"""A live CSMS served from a thread of its own, for synchronous tests (hypothesis, schemathesis).

``hypothesis`` runs each example of a test synchronously, so the server cannot share the
test's event loop: it gets its own loop in a daemon thread, and the test talks to it over real
sockets on 127.0.0.1 (httpx, ``websockets.sync``). Whatever the server logs at ERROR with a
traceback is collected in :attr:`ThreadedCsms.tracebacks`, so a fuzz test can say "no bug
was logged" as well as "no bad answer was seen".
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from config.settings import Settings

from .conftest import serve


class _TracebackRecorder(logging.Handler):
    """Keeps every record at ERROR or above that carries an exception."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@dataclass
class ThreadedCsms:
    """The port of a CSMS running in another thread, and what it logged with a traceback."""

    port: int
    recorder: _TracebackRecorder = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, charger_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp/{charger_id}"

    def take_tracebacks(self) -> list[str]:
        """ "logger: message (exception)" of every ERROR record with an exception logged since
        the last call, in order."""
        records, self.recorder.records = self.recorder.records, []
        return [
            f"{r.name}: {r.getMessage()} ({(r.exc_info or (None, None))[1]!r})" for r in records
        ]


@contextmanager
def threaded_csms(settings: Settings) -> Iterator[ThreadedCsms]:
    """Serves ``settings`` on a free 127.0.0.1 port until the block ends."""
    ready = threading.Event()
    started: dict[str, object] = {}

    async def main() -> None:
        stop = asyncio.Event()
        try:
            async with serve(settings) as live:
                started.update(port=live.port, loop=asyncio.get_running_loop(), stop=stop)
                ready.set()
                await stop.wait()
        except BaseException as exc:
            started["error"] = exc
            ready.set()
            raise

    recorder = _TracebackRecorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    thread = threading.Thread(target=asyncio.run, args=(main(),), name="csms", daemon=True)
    thread.start()
    try:
        if not ready.wait(60) or "error" in started:
            raise RuntimeError(f"the CSMS did not start: {started.get('error')!r}")
        port = started["port"]
        assert isinstance(port, int)
        yield ThreadedCsms(port, recorder)
    finally:
        loop, stop = started.get("loop"), started.get("stop")
        if isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop, asyncio.Event):
            loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        root.removeHandler(recorder)
