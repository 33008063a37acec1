"""CPU per OCPP message inside the CSMS, without sockets: where the load benchmark's time goes.

Runs the real CSMS (``create_app`` and its lifespan: store writer, payment side, message log)
in this process and drives N in-memory chargers (the load generator's message cycle, half
OCPP 1.6 and half 2.0.1) straight into their ChargePoint objects: no WebSocket framing, no
network, no second process. Prints messages/s and CPU milliseconds per message (all threads
of this process: event loop, database thread), so a change to the hot path can be judged in
seconds, not in a five-minute load run.

    .venv/bin/python -m benchmarks.ocpp_handler_bench --chargers 200 --messages 20000
    .venv/bin/python -m benchmarks.ocpp_handler_bench --db postgresql --profile /tmp/p.txt
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, event

from benchmarks import proc
from benchmarks.ocpp_load import PG_ADMIN_DSN, fresh_postgres_database
from benchmarks.ocpp_load_frames import (
    CALL,
    CALLERROR,
    CALLRESULT,
    ChargerScript,
    Version,
    answer_to_csms_call,
    encode_call,
    encode_error,
    encode_result,
)
from benchmarks.pg_cpu import ServerCpu, backend_cpu
from config.settings import Settings, load_settings
from csms.app import create_app
from csms.cli import tune_gc
from csms.context import CsmsContext
from csms.errors import ConnectionEnded
from csms.protocol.endpoint import serve_transport
from csms.store import chargers as store

END = "\x00end"


@dataclass(slots=True)
class MemoryCharger:
    """One charger as a transport: ``recv`` hands the CSMS the next CALL once the previous
    one was answered; ``send`` reads the CSMS's answers and answers the CSMS's own CALLs."""

    script: ChargerScript
    budget: int
    inbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    pending: tuple[str, str, float] | None = None
    answered: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    sent: int = 0
    counter: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        action, payload = self.script.boot()
        self._call(action, payload)

    def _call(self, action: str, payload: dict[str, object]) -> None:
        self.counter += 1
        message_id = f"{self.script.charger_id}-{self.counter}"
        self.pending = (message_id, action, time.perf_counter())
        self.inbox.put_nowait(encode_call(message_id, action, payload))

    async def recv(self) -> str:
        message = await self.inbox.get()
        if message == END:
            raise ConnectionEnded("the charger has sent its share")
        return message

    async def send(self, message: str) -> None:
        frame = json.loads(message)
        if frame[0] == CALL:
            answer = answer_to_csms_call(self.script.version, frame[2], frame[3])
            self.inbox.put_nowait(
                encode_error(frame[1], "NotImplemented")
                if answer is None
                else encode_result(frame[1], answer)
            )
            return
        assert self.pending is not None and frame[1] == self.pending[0], frame
        _, action, sent_at = self.pending
        self.latencies.append(time.perf_counter() - sent_at)
        if frame[0] == CALLRESULT:
            self.answered[action] += 1
            self.script.on_result(action, frame[2])
        elif frame[0] == CALLERROR:
            self.errors[f"{action}:{frame[2]}"] += 1
        self.sent += 1
        if self.sent >= self.budget:
            self.pending = None
            self.inbox.put_nowait(END)
            return
        self._call(*self.script.next_call())

    async def close(self, reason: str) -> None:
        self.closed.set()


def settings_for(data_dir: Path, database_url: str) -> Settings:
    return load_settings(data_dir=data_dir, database_url=database_url)


async def run(args: argparse.Namespace, database_url: str, data_dir: Path) -> None:
    app = create_app(settings_for(data_dir, database_url))
    async with app.router.lifespan_context(app):
        ctx: CsmsContext = app.state.ctx
        now = datetime.now(UTC)
        ids = [f"HB{n:05d}" for n in range(args.chargers)]
        async with ctx.db.session() as session:
            for charger_id in ids:
                await store.create_charger(
                    session, charger_id=charger_id, password_hash=None, evses=1, now=now
                )
        chargers = []
        for n, charger_id in enumerate(ids):
            version: Version = "2.0.1" if n % 2 else "1.6"
            script = ChargerScript(charger_id, version)
            chargers.append(MemoryCharger(script, budget=max(1, args.messages // args.chargers)))
        for charger in chargers:
            charger.start()
        tune_gc()  # as `qrcharge csms` does before it serves: rarer cyclic collections
        server = _server_sample(database_url)
        threads = proc.thread_counts(os.getpid())
        statements = _StatementCount()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with statements:
            await asyncio.gather(
                *(serve_transport(ctx, c, c.script.charger_id, c.script.version) for c in chargers)
            )
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        server_after = _server_sample(database_url)  # before the lifespan closes them
        threads_after = proc.thread_counts(os.getpid())  # so are the database threads
        names = {t.native_id: re.sub(r"[-_]?\d+$", "", t.name) for t in threading.enumerate()}
    report(chargers, wall, cpu)
    total = sum(sum(c.answered.values()) + sum(c.errors.values()) for c in chargers)
    report_threads(threads, threads_after, names, total)
    print(f"statements {statements.count / total:.2f} per message")
    if server is not None and server_after is not None:
        used, _aux = server_after.since(server)
        print(
            f"PostgreSQL backends {used / total * 1000:.3f} ms CPU/msg "
            f"(CSMS + server {(cpu + used) / total * 1000:.3f} ms/msg), "
            f"{server_after.sleeps_since(server) / total:.2f} round trips/msg"
        )


class _StatementCount:
    """Counts the statements sent to the database (all engines) while it is entered."""

    def __init__(self) -> None:
        self.count = 0

    def _seen(self, *_args: object) -> None:
        self.count += 1

    def __enter__(self) -> None:
        event.listen(Engine, "before_cursor_execute", self._seen)

    def __exit__(self, *_exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._seen)


def _server_sample(database_url: str) -> ServerCpu | None:
    """PostgreSQL: the CPU and round trips so far of the run's backends (benchmarks/pg_cpu)."""
    if not database_url.startswith("postgresql"):
        return None
    return backend_cpu(PG_ADMIN_DSN, database_url.rsplit("/", 1)[1])


def report(chargers: list[MemoryCharger], wall: float, cpu: float) -> None:
    answered: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    for c in chargers:
        answered.update(c.answered)
        errors.update(c.errors)
        latencies.extend(c.latencies)
    total = sum(answered.values()) + sum(errors.values())
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    print(f"messages   {total} answered ({sum(errors.values())} CALLERROR) in {wall:.2f} s")
    print(f"throughput {total / wall:.0f} msg/s   CPU {cpu / total * 1000:.3f} ms/msg ", end="")
    print(f"({cpu / wall * 100:.0f} % of one core)")
    print(f"latency    p50 {pct(0.5):.1f}  p99 {pct(0.99):.1f}  max {pct(1.0):.1f} ms")
    print("answered  ", dict(sorted(answered.items())))
    if errors:
        print("errors    ", dict(errors))


def report_threads(
    before: dict[int, tuple[float, int, int]],
    after: dict[int, tuple[float, int, int]],
    names: dict[int | None, str],
    total: int,
) -> None:
    """CPU and context switches per message of each kind of thread (the event loop, the store
    writer's lanes, ...; threads of one kind added up, by ``names``: native id -> kind). The
    charger stand-ins run on the event loop too, so its figure holds theirs."""
    kinds: dict[str, list[float]] = {}
    for tid, (cpu, voluntary, involuntary) in after.items():
        cpu0, voluntary0, involuntary0 = before.get(tid, (0.0, 0, 0))
        kind = kinds.setdefault(names.get(tid, "other"), [0.0, 0.0, 0.0])
        kind[0] += cpu - cpu0
        kind[1] += voluntary - voluntary0
        kind[2] += involuntary - involuntary0
    for name, (used, waits, preempted) in sorted(kinds.items(), key=lambda k: -k[1][0]):
        if used or waits:
            print(
                f"thread     {name:12s} {used / total * 1000:.3f} ms/msg  "
                f"{waits / total:.2f} waits + {preempted / total:.2f} preemptions per msg"
            )


@contextlib.contextmanager
def database(kind: str, data_dir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
        return
    with fresh_postgres_database(True) as url:
        yield url


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chargers", type=int, default=200)
    p.add_argument("--messages", type=int, default=20_000, help="total CALLs (boot included)")
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--profile", metavar="FILE", help="cProfile the run into FILE (pstats)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="qrcharge-hbench-") as tmp:
        data_dir = Path(tmp)
        with database(args.db, data_dir) as url:
            coro = run(args, url, data_dir)
            if args.profile:
                import cProfile

                with cProfile.Profile() as prof:
                    asyncio.run(coro)
                prof.dump_stats(args.profile)
            else:
                asyncio.run(coro)
    gc.unfreeze()  # frozen objects would be reported as leaked at exit (see csms.cli)


if __name__ == "__main__":
    main()
