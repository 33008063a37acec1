"""Memory of connected chargers: what one idle, booted OCPP connection costs the CSMS.

Runs the real app under uvicorn (``server_config``: our WebSocket protocol) in this process on
SQLite, registers N chargers straight in the store (one password hash for all), and connects
them from a child process (raw ``websockets``, half 1.6 and half 2.0.1, each booting and then
idle). Prints the Python heap per connection (``tracemalloc``: taken after the app started,
before the chargers connect, and again once all are booted) and the process's RSS per 1,000
chargers, then the biggest allocation sites. ``tracemalloc`` slows the process: take the
heap figures, not timings, from here. ``--no-trace`` measures RSS alone.

    .venv/bin/python -m benchmarks.connection_memory --chargers 1000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import multiprocessing
import socket
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from benchmarks import proc
from benchmarks.ocpp_load_frames import (
    ChargerScript,
    answer_to_csms_call,
    encode_call,
    encode_error,
    encode_result,
)
from config.settings import load_settings
from csms.app import create_app, server_config
from csms.passwords import hash_password
from csms.store import chargers as store

PASSWORD = "bench-password-1"


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_of(pid: int | None) -> float:
    """CPU seconds (user + system) of process ``pid``."""
    used = proc.cpu_s(pid) if pid is not None else None
    if used is None:
        raise ProcessLookupError(f"no process {pid}")
    return used


def _clients(
    port: int,
    ids: list[str],
    first: int,
    messages: int,
    ready: Any,
    more: Any,
    go: Any,
    done: Any,
    stop: Any,
) -> None:
    import websockets

    async def exchange(ws: Any, script: ChargerScript, n: int, action: str, payload: Any) -> None:
        """One CALL of the charger, answered (the CSMS's own CALLs meanwhile answered too)."""
        await ws.send(encode_call(f"m{n}", action, payload))
        while True:
            frame = json.loads(await ws.recv())
            if frame[0] == 2:  # the CSMS asks something
                answer = answer_to_csms_call(script.version, frame[2], frame[3])
                reply = (
                    encode_error(frame[1], "NotImplemented")
                    if answer is None
                    else (encode_result(frame[1], answer))
                )
                await ws.send(reply)
                continue
            assert frame[0] == 3, frame
            script.on_result(action, frame[2])
            return

    async def work(ws: Any, script: ChargerScript) -> None:
        for n in range(messages):
            await exchange(ws, script, n, *script.next_call())

    async def main() -> None:
        links: list[tuple[Any, ChargerScript]] = []
        loop = asyncio.get_running_loop()
        for n, charger_id in enumerate(ids):
            if n == first and first:
                ready.put(len(links))
                await loop.run_in_executor(None, more.wait)
            version = "2.0.1" if n % 2 else "1.6"
            token = base64.b64encode(f"{charger_id}:{PASSWORD}".encode()).decode()
            ws = await websockets.connect(
                f"ws://127.0.0.1:{port}/ocpp/{charger_id}",
                subprotocols=["ocpp2.0.1" if version == "2.0.1" else "ocpp1.6"],  # type: ignore[list-item]
                additional_headers={"Authorization": f"Basic {token}"},
                compression=None,
                ping_interval=None,
                open_timeout=120,
            )
            script = ChargerScript(charger_id, version)  # type: ignore[arg-type]
            await exchange(ws, script, -1, *script.boot())
            links.append((ws, script))
        ready.put(len(links))
        await loop.run_in_executor(None, go.wait)
        await asyncio.gather(*(work(ws, script) for ws, script in links))
        done.put(len(links) * messages)
        await loop.run_in_executor(None, stop.wait)
        for ws, _ in links:
            await ws.close()

    asyncio.run(main())


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="qrcharge-mem-") as tmp:
        settings = load_settings(
            data_dir=Path(tmp), database_url=f"sqlite+aiosqlite:///{tmp}/csms.db"
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        app = create_app(settings)
        config = server_config(settings, app, port=port, log_level="warning")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
            await asyncio.sleep(0.05)
        ctx = app.state.ctx
        hashed = hash_password(PASSWORD)
        ids = [f"MEM{n:05d}" for n in range(args.chargers)]
        async with ctx.db.session() as session:
            for charger_id in ids:
                await store.create_charger(
                    session,
                    charger_id=charger_id,
                    password_hash=hashed,
                    evses=1,
                    now=datetime.now(UTC),
                )
        await asyncio.sleep(1)
        gc.collect()
        mp = multiprocessing.get_context("spawn")
        ready, done, go, stop, more = mp.Queue(), mp.Queue(), mp.Event(), mp.Event(), mp.Event()
        child = mp.Process(
            target=_clients,
            args=(port, ids, args.first, args.messages, ready, more, go, done, stop),
            daemon=True,
        )
        loop = asyncio.get_running_loop()

        async def settled() -> int:
            await asyncio.sleep(2)  # the writer's group commits and the message log settle
            await ctx.message_log.flush()
            gc.collect()
            return _rss_kb()

        rss0 = _rss_kb()
        child.start()
        first = 0
        if args.first:
            first = await loop.run_in_executor(None, ready.get)
            rss_first = await settled()
            print(f"first {first} chargers: RSS {rss0 / 1024:.1f} MB -> {rss_first / 1024:.1f} MB")
            rss0 = rss_first
        if args.trace:
            tracemalloc.start(args.frames)
        before = tracemalloc.take_snapshot() if args.trace else None
        more.set()
        connected = await loop.run_in_executor(None, ready.get)
        rss1 = await settled()
        added = connected - first
        print(f"chargers connected and booted: {connected}")
        print(
            f"RSS: {rss0 / 1024:.1f} MB -> {rss1 / 1024:.1f} MB for {added} more: "
            f"{(rss1 - rss0) / 1024 / added * 1000:.1f} MB per 1,000 chargers"
        )
        connected = added
        if before is not None:
            after = tracemalloc.take_snapshot()
            stats = after.compare_to(before, "lineno" if args.frames == 1 else "traceback")
            total = sum(s.size_diff for s in stats)
            print(f"Python heap: {total / connected:.0f} bytes per connection")
            for stat in stats[: args.top]:
                where = stat.traceback.format()
                print(
                    f"{stat.size_diff / connected:8.0f} B/conn "
                    f"{stat.count_diff / connected:6.2f} blocks/conn  {where[-1].strip()}"
                )
            tracemalloc.stop()
        if args.messages:
            cpu0, child0 = time.process_time(), _cpu_of(child.pid)
            wall0 = time.perf_counter()
            go.set()
            sent = await loop.run_in_executor(None, done.get)
            await asyncio.sleep(0)
            cpu, child_cpu = time.process_time() - cpu0, _cpu_of(child.pid) - child0
            wall = time.perf_counter() - wall0
            print(
                f"messages {sent} in {wall:.1f} s: CSMS CPU {cpu:.2f} s = "
                f"{cpu / sent * 1000:.3f} ms per message; generator CPU {child_cpu:.2f} s = "
                f"{child_cpu / sent * 1000:.3f} ms per message"
            )
        stop.set()
        child.join(30)
        server.should_exit = True
        await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=500)
    parser.add_argument(
        "--first",
        type=int,
        default=0,
        help="connect this many first and measure from there (the slope: fixed costs apart)",
    )
    parser.add_argument("--messages", type=int, default=0, help="then CALLs per charger")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--frames", type=int, default=1, help="traceback depth per site")
    parser.add_argument("--no-trace", dest="trace", action="store_false")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
