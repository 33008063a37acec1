"""Payments benchmark: orders created/s and settlements verified and paid/s, one CSMS process.

What one CSMS process does per request, without HTTP framing: an order is the billing model
lookup, ``lim.amt``, the hold (a balanced ledger transfer under the wallet lock), the order row
and an ES256-signed start token; a settlement is the ES256 verification with the charger's key
looked up by (iss, kid), the match to the order's snapshot and the recomputed cost, the
settlement record and the pending payment, then the capture (capture + release transfers, the
receipt). ``--http`` runs the same through the FastAPI app in-process (httpx ASGI transport:
routing, validation, the driver's bearer token, JSON), which costs more; its client shares the
process. ``--http-server`` sends the same requests to ``qrcharge csms --workers N`` running in
processes of their own (uvicorn, as deployed; PostgreSQL and Redis for N > 1) from light
keep-alive client processes (:mod:`benchmarks.payments_http`), and reports each CSMS
process's CPU, the clients' and the database's, p50/p99 and PostgreSQL transactions per
request; ``--compare DIR`` runs another tree's CSMS and this one alternately.

Settlements are signed beforehand (that is the charger's work). ``--concurrency`` requests are
in flight at once, spread over ``--drivers`` wallets (each wallet is a lock).

    .venv/bin/python -m benchmarks.payments_bench                       # SQLite, ~30 s
    .venv/bin/python -m benchmarks.payments_bench --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench
    .venv/bin/python -m benchmarks.payments_bench --quick               # smoke run
    .venv/bin/python -m benchmarks.payments_bench --http-server --db postgresql --workers 2

The PostgreSQL database must exist and is emptied first. Exit code 1 with ``--check`` when a
SQLite run is below the target (500 orders/s and 500 settlements/s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import text

from benchmarks import payments_http as http
from benchmarks.pg_analyze import autoanalyze
from config.settings import Settings, load_settings
from csms.drivers.accounts import create_user
from csms.keys import KeyManager
from csms.payments.capture import confirm_payment
from csms.payments.orders import OrderRequest, place_order, snapshot
from csms.payments.provider import SandboxProvider
from csms.payments.receipts import ReceiptTerms
from csms.payments.settlement_service import SettlementService
from csms.payments.top_ups import top_up
from csms.settlement_keys import set_settlement_key
from csms.store.chargers import create_charger
from csms.store.db import Database, migrate
from csms.store.models_orders import Order
from qr_extension.keys import SigningKey, generate_key
from qr_extension.settlement import build_settlement, sign_settlement
from qr_extension.tariff import UsageBucket

TARGET_PER_S = 500
IDLE_S = 3.0
STATS_FLUSH_S = 1.5  # PostgreSQL's backends report their statistics within a second of idling
CHARGERS = 20


@dataclass(frozen=True, slots=True)
class Rate:
    """A measured phase: wall time, and the CPU time of this process (all its threads, so the
    SQLite worker threads too). On a shared machine ``count / cpu_s`` is what one core would do
    if this process had it alone."""

    label: str
    count: int
    seconds: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_s(self) -> float:
        return self.count / self.cpu_s if self.cpu_s else 0.0

    def line(self) -> str:
        return (
            f"{self.label:<40} {self.per_s:8.0f}/s  ({self.count} in {self.seconds:.2f} s; "
            f"CPU {self.cpu_s:.2f} s = {self.per_cpu_s:.0f} per CPU-second)"
        )


class Timer:
    """Wall and process CPU time of a block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def rate(self, label: str, count: int) -> Rate:
        return Rate(label, count, self.wall, self.cpu)


async def _bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], concurrency: int) -> list[Any]:
    queue = list(reversed(jobs))
    results: list[Any] = []

    async def worker() -> None:
        while queue:
            job = queue.pop()
            results.append(await job())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def _empty_postgres(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))


@dataclass
class Bench:
    db: Database
    settings: Settings
    keys: KeyManager
    charger_keys: dict[str, SigningKey]
    users: list[int]


async def setup(url: str, tmp: Path, drivers: int, funds: int) -> Bench:
    settings = load_settings(
        data_dir=tmp,
        database_url=url,
        max_order_amount=50_000,
        upload_rate_per_driver=0,  # a benchmark's drivers upload as fast as they can
        upload_rate_per_client=0,
    )
    db = Database.connect(url)
    if not url.startswith("sqlite"):
        await _empty_postgres(db)
    await migrate(db.engine)
    now = datetime.now(UTC)
    keys = KeyManager.open(
        tmp / "keys", now=int(now.timestamp()) - 5, prepublish_s=86_400, token_lifetime_s=1200
    )
    charger_keys = {f"BENCH{n:03d}": generate_key() for n in range(CHARGERS)}
    users: list[int] = []
    async with db.session() as session:
        for charger_id in charger_keys:
            await create_charger(
                session, charger_id=charger_id, password_hash=None, evses=2, now=now
            )
        await session.commit()
    for charger_id, key in charger_keys.items():
        await set_settlement_key(db, charger_id=charger_id, jwk=key.public.to_jwk(), now=now)
    async with db.session() as session:
        for n in range(drivers):
            user = await create_user(
                session, email=f"bench{n}@example.org", password_hash="x", currency="CNY"
            )
            assert user.id is not None
            users.append(user.id)
        await session.commit()
    psp = SandboxProvider()
    for n, uid in enumerate(users):
        await top_up(db, user_id=uid, amount=funds, key=f"bench-top-up-{n}", provider=psp, now=now)
    return Bench(db, settings, keys, charger_keys, users)


async def _order(bench: Bench, i: int) -> Order:
    charger_id = f"BENCH{i % CHARGERS:03d}"
    placed = await place_order(
        bench.db,
        user_id=bench.users[i % len(bench.users)],
        request=OrderRequest(charger_id=charger_id, evse_id=1 + i % 2, amount=2000),
        settings=bench.settings,
        keys=bench.keys,
        now=datetime.now(UTC),
    )
    return placed.order


def _settlement(bench: Bench, order: Order, i: int) -> str:
    auth = snapshot(order)
    start = auth.issued_at + 5
    # a short session: the CSMS (on the real clock) refuses a settlement that ends after now
    # plus the leeway, and these are submitted right after their orders
    s = build_settlement(
        auth,
        audience=bench.settings.issuer,
        transaction_id=f"{i:06d}-bench",
        started_at=start,
        stopped_at=start + 240,
        meter_start_wh=0,
        meter_stop_wh=7000,
        usage=[UsageBucket(0, 7000, 240, 0)],
        reason="EVDisconnected",
        seq=i,
        offline=True,
        issued_at=start + 240,
    )
    return sign_settlement(s, bench.charger_keys[order.charger_id])


async def run_service(bench: Bench, count: int, concurrency: int) -> list[Rate]:
    service = SettlementService(bench.db, settings=bench.settings, clock=lambda: datetime.now(UTC))
    with Timer() as timer:
        orders: list[Order] = await _bounded(
            [partial(_order, bench, i) for i in range(count)], concurrency
        )
    created = timer.rate("orders created (hold + signed token)", count)
    tokens = [_settlement(bench, o, i) for i, o in enumerate(orders)]

    async def settle_and_pay(token: str) -> None:
        outcome = await service.submit(token, source="upload")
        assert outcome.payment is not None and outcome.payment.id is not None
        await confirm_payment(
            bench.db,
            payment_id=outcome.payment.id,
            kind="driver",
            now=datetime.now(UTC),
            terms=ReceiptTerms.from_settings(bench.settings),
        )

    with Timer() as timer:
        await _bounded([partial(settle_and_pay, t) for t in tokens], concurrency)
    paid = timer.rate("settlements verified + paid", count)
    return [created, paid]


def _driver_headers(bench: Bench) -> dict[int, dict[str, str]]:
    """A bearer token per driver, signed with the CSMS's own driver-token secret."""
    from csms.drivers.tokens import DriverTokens, load_or_create_secret

    tokens = DriverTokens(
        secret=load_or_create_secret(bench.settings.resolved_key_dir),
        issuer=bench.settings.issuer,
        ttl_s=3600,
    )
    now = int(time.time())
    return {u: {"Authorization": f"Bearer {tokens.issue(u, now=now)}"} for u in bench.users}


def _order_body(i: int) -> dict[str, Any]:
    return {"charger_id": f"BENCH{i % CHARGERS:03d}", "evse_id": 1 + i % 2, "amount": 2000}


async def run_http(bench: Bench, count: int, concurrency: int) -> list[Rate]:
    import httpx

    from csms.app import create_app

    app = create_app(bench.settings)
    async with app.router.lifespan_context(app):
        auth = _driver_headers(bench)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://csms") as http:

            async def order(i: int) -> dict[str, Any]:
                user = bench.users[i % len(bench.users)]
                r = await http.post("/api/v1/orders", json=_order_body(i), headers=auth[user])
                assert r.status_code == 201, r.text
                return {"user": user, **r.json()}

            with Timer() as timer:
                made = await _bounded([partial(order, i) for i in range(count)], concurrency)
            created = timer.rate("HTTP orders created", count)
            async with bench.db.session() as session:
                rows = [(m, await session.get(Order, m["id"])) for m in made]

            async def pay(i: int, made_order: dict[str, Any], row: Order) -> None:
                headers = auth[made_order["user"]]
                token = _settlement(bench, row, i)
                r = await http.post("/api/v1/settlements", json={"token": token}, headers=headers)
                assert r.status_code == 200, r.text
                pid = r.json()["payment_id"]
                r = await http.post(f"/api/v1/payments/{pid}/confirm", headers=headers)
                assert r.status_code == 200, r.text

            signed = [(i, m, row) for i, (m, row) in enumerate(rows) if row is not None]
            with Timer() as timer:
                await _bounded([partial(pay, *a) for a in signed], concurrency)
            paid = timer.rate("HTTP settlements verified + paid (incl. signing)", count)
    return [created, paid]


def _http_jobs(bench: Bench, auth: dict[int, bytes], first: int, count: int) -> list[Any]:
    """``count`` order requests, numbered from ``first``: (driver's authorization, (path, body))."""
    jobs = []
    for i in range(first, first + count):
        user = bench.users[i % len(bench.users)]
        jobs.append((auth[user], ("/api/v1/orders", json.dumps(_order_body(i)).encode())))
    return jobs


async def _settlement_jobs(
    bench: Bench, auth: dict[int, bytes], ids: Sequence[str], first: int
) -> list[Any]:
    """An upload for each order (signed here: that is the charger's work, not timed)."""
    async with bench.db.session() as session:
        rows = [await session.get(Order, order_id) for order_id in ids]
    jobs = []
    for i, row in enumerate(rows, first):
        assert row is not None
        body = json.dumps({"token": _settlement(bench, row, i)}).encode()
        jobs.append((auth[row.user_id], ("/api/v1/settlements", body)))
    return jobs


async def run_http_round(
    bench: Bench, args: argparse.Namespace, tmp: Path, url: str, source: Path | None, n: int
) -> list[http.Phase]:
    """One round against ``qrcharge csms --workers N`` (from ``source``, or this tree): a
    warm-up, then the measured orders and the measured settlements (upload + confirm)."""
    auth = {u: h["Authorization"].encode() for u, h in _driver_headers(bench).items()}
    first = n * (args.count + args.warmup)  # order numbers of this round
    csms = http.Csms(
        tmp=tmp,
        url=url,
        workers=args.workers,
        redis_url=args.redis_url_resolved,
        redis_prefix=args.redis_prefix,
        source=source,
        log_name=f"csms-{n}.log",
    )
    clients = None
    try:
        await asyncio.to_thread(csms.wait_ready)
        clients = await asyncio.to_thread(http.Clients, csms.port, args.clients, args.concurrency)
        pids = csms.pids()

        async def phase(kind: str, label: str, jobs: list[Any], requests: int) -> http.Phase:
            xacts_before = await http.transactions(bench.db)
            cpu_before, db_before = http.measure(pids, bench.db)
            results, lat, errors, wall, client_cpu = await asyncio.to_thread(
                clients.run, kind, jobs
            )
            cpu_after, db_after = http.measure(pids, bench.db)
            await asyncio.sleep(STATS_FLUSH_S)
            xacts_after = await http.transactions(bench.db)
            xacts = None
            if xacts_before is not None and xacts_after is not None:
                xacts = xacts_after - xacts_before - 1  # less the first reading's own
            if errors:
                raise RuntimeError(f"{len(errors)} {kind} failed, first: {errors[0]}")
            used = {k: cpu_after[k] - cpu_before[k] for k in pids}
            db_cpu = db_after - db_before
            return http.Phase(
                label, len(jobs), wall, lat, requests, used, client_cpu, db_cpu, xacts, results
            )  # fmt: skip

        warm = await phase("orders", "warm-up", _http_jobs(bench, auth, first, args.warmup), 0)
        warm_jobs = await _settlement_jobs(bench, auth, warm.results, first)
        await phase("settlements", "warm-up", warm_jobs, 0)
        first += args.warmup
        # what the processes burn with no request (timers, the leader's heartbeat, metrics):
        # at a low rate it is a visible part of the CPU per request
        idle_before, _ = http.measure(pids, None)
        await asyncio.sleep(IDLE_S)
        idle_after, _ = http.measure(pids, None)
        idle = sum(idle_after.values()) - sum(idle_before.values())
        print(f"  CSMS CPU while idle: {idle / IDLE_S:.3f} CPU-s per s", flush=True)
        profilers = http.start_profilers(pids, args.profile, n) if args.profile else []
        jobs = _http_jobs(bench, auth, first, args.count)
        orders = await phase("orders", "orders created", jobs, len(jobs))
        jobs = await _settlement_jobs(bench, auth, orders.results, first)
        paid = await phase("settlements", "settlements verified + paid", jobs, 2 * len(jobs))
        http.stop_profilers(profilers)
        receipts = [r for r in paid.results if r is not None]
        if len(set(receipts)) != len(jobs):
            raise RuntimeError(f"{len(jobs)} settlements but {len(set(receipts))} receipts")
    except Exception:
        print(f"the CSMS's log ends:\n{csms.log_tail(8000)}", file=sys.stderr)
        raise
    finally:
        if clients is not None:
            clients.close()
        await asyncio.to_thread(csms.stop)
    return [orders, paid]


async def run_http_server(
    bench: Bench, args: argparse.Namespace, tmp: Path, url: str
) -> list[tuple[str, list[http.Phase]]]:
    """Rounds against ``qrcharge csms``: this tree (or ``--csms-source``), or with
    ``--compare DIR`` that tree and this one alternately."""
    own = Path(args.csms_source) if args.csms_source else None
    trees = [("before", Path(args.compare)), ("after", own)] if args.compare else [("run", own)]
    rounds: list[tuple[str, list[http.Phase]]] = []
    for n in range(args.rounds):
        for name, source in trees:
            phases = await run_http_round(bench, args, tmp, url, source, len(rounds))
            rounds.append((name, phases))
            print(f"  round {n + 1}, {name} ({source or 'this tree'}):", flush=True)
            for phase in phases:
                for line in phase.lines():
                    print("    " + line, flush=True)
    return rounds


def _compare_lines(rounds: list[tuple[str, list[http.Phase]]]) -> list[str]:
    """CPU per request of each tree (medians over rounds) and after / before."""
    lines = []
    for index, label in ((0, "orders"), (1, "settlements")):
        medians = {}
        for name in ("before", "after"):
            values = [p[index].csms_ms_per_request for n, p in rounds if n == name]
            rates = [p[index].per_s for n, p in rounds if n == name]
            medians[name] = statistics.median(values)
            lines.append(
                f"  {label:<12} {name:<6} CSMS ms/request: {http.percentiles(values)}; "
                f"/s: {', '.join(f'{r:.0f}' for r in rates)}"
            )
        ratio = medians["after"] / medians["before"] if medians["before"] else 0.0
        lines.append(f"  {label:<12} after / before (CPU per request): {ratio:.2f}")
    return lines


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A uniquely named database on the local PostgreSQL for one run, dropped afterwards."""
    import asyncpg

    name = f"qrcharge_paybench_{secrets.token_hex(6)}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _clear_redis(url: str, prefix: str) -> None:
    """Deletes the run's keys (its prefix) from Redis."""
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
            await redis.delete(key)
    finally:
        await redis.aclose()


async def _main(args: argparse.Namespace, url: str) -> int:
    # SIGTERM stops the run as Ctrl-C does: the CSMS and the clients are stopped, the
    # database dropped
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with tempfile.TemporaryDirectory(prefix="qrcharge-bench-") as tmp:
        url = url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        backend = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
        rounds = args.rounds * (2 if args.compare else 1)
        funds = 2000 * (args.count + args.warmup) * rounds
        bench = await setup(url, Path(tmp), args.drivers, funds=funds)
        # as in the CSMS (csms/app.py): SQLite's WAL is checkpointed by a thread of its own
        checkpoints = asyncio.create_task(bench.db.run_checkpoints())
        server_rounds: list[tuple[str, list[http.Phase]]] = []
        rates: list[Rate] = []
        try:
            print(_title(args, backend), flush=True)
            if args.http_server:
                server_rounds = await run_http_server(bench, args, Path(tmp), url)
            else:
                runner = run_http if args.http else run_service
                rates = await runner(bench, args.count, args.concurrency)
        finally:
            checkpoints.cancel()
            await asyncio.gather(checkpoints, return_exceptions=True)
            await bench.db.dispose()
            if args.http_server and args.redis_url_resolved:
                await _clear_redis(args.redis_url_resolved, args.redis_prefix)
    if args.compare:
        for line in _compare_lines(server_rounds):
            print(line)
    if args.json:
        document = {
            "title": _title(args, backend),
            "rounds": [{"tree": n, "phases": [p.as_dict() for p in ps]} for n, ps in server_rounds],
            "rates": [
                {"label": r.label, "per_s": r.per_s, "per_cpu_s": r.per_cpu_s} for r in rates
            ],
        }
        text_out = json.dumps(document, indent=1)
        if args.json == "-":
            print(text_out)
        else:
            await asyncio.to_thread(Path(args.json).write_text, text_out + "\n")
    for rate in rates:
        print("  " + rate.line())
    missed = [r for r in rates if r.per_s < TARGET_PER_S]
    if args.check and backend == "SQLite" and _mode(args) == "service" and missed:
        print(f"below the target of {TARGET_PER_S}/s: {[r.label for r in missed]}")
        return 1
    return 0


def _title(args: argparse.Namespace, backend: str) -> str:
    server = ""
    if args.http_server:
        redis = "Redis" if args.redis_url_resolved else "no Redis"
        server = (
            f", {args.workers} CSMS process(es), {redis}, {args.clients} client process(es), "
            f"warm-up {args.warmup}"
        )
    return (
        f"payments bench: {backend}, {args.count} orders, concurrency {args.concurrency}, "
        f"{args.drivers} drivers, {_mode(args)}{server}; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )


def _mode(args: argparse.Namespace) -> str:
    if args.http_server:
        return "HTTP to qrcharge csms"
    return "HTTP in-process" if args.http else "service"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgresql"),
        help="postgresql: a fresh database on 127.0.0.1:5432, dropped afterwards",
    )
    parser.add_argument("--count", type=int, default=2000, help="orders (and settlements)")
    parser.add_argument("--concurrency", type=int, help="requests in flight (default 16)")
    parser.add_argument("--drivers", type=int, default=200, help="wallets the orders spread over")
    parser.add_argument("--http", action="store_true", help="through the FastAPI app (ASGI)")
    parser.add_argument(
        "--http-server",
        action="store_true",
        help="to `qrcharge csms` in processes of their own (CPU: each CSMS process's)",
    )
    server = parser.add_argument_group("--http-server")
    server.add_argument("--workers", type=int, default=1, help="CSMS processes (--workers N)")
    server.add_argument(
        "--redis-url",
        help="the CSMS's redis_url (default with --workers > 1: redis://127.0.0.1:6379/0; "
        "'none' for none); the run's keys get a prefix of their own and are deleted after",
    )
    server.add_argument("--clients", type=int, default=1, help="client processes")
    server.add_argument("--warmup", type=int, help="orders and settlements before the clock")
    server.add_argument("--csms-source", metavar="DIR", help="run the CSMS from this tree")
    server.add_argument(
        "--compare",
        metavar="DIR",
        help="'before': run the CSMS from DIR and from this tree (or --csms-source) "
        "alternately, --rounds times each, and print CPU per request after / before",
    )
    server.add_argument("--rounds", type=int, default=1, help="rounds (per tree)")
    server.add_argument(
        "--profile",
        metavar="PREFIX",
        help="py-spy's raw stacks of each CSMS process during the measured phases, to "
        "PREFIX-<round>-<process>.txt (.venv/bin/pip install py-spy; not a project dependency)",
    )
    parser.add_argument(
        "--autoanalyze",
        action="store_true",
        help="PostgreSQL: ANALYZE by autovacuum's rule every second (benchmarks/pg_analyze.py)",
    )
    parser.add_argument("--json", metavar="FILE", help="the figures as JSON ('-': stdout)")
    parser.add_argument("--quick", action="store_true", help="a smoke run (100 orders)")
    parser.add_argument("--check", action="store_true", help="exit 1 below the SQLite target")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.drivers = 100, 20
    if args.concurrency is None:
        args.concurrency = 16 * args.workers if args.http_server else 16
    if args.warmup is None:
        args.warmup = max(20, args.count // 20)
    if args.redis_url is None:
        args.redis_url = "redis://127.0.0.1:6379/0" if args.workers > 1 else "none"
    args.redis_url_resolved = "" if args.redis_url == "none" else args.redis_url
    args.redis_prefix = f"paybench-{secrets.token_hex(4)}"
    for name in ("csms_source", "compare"):  # the CSMS runs from there: absolute paths
        if getattr(args, name):
            setattr(args, name, str(Path(getattr(args, name)).resolve()))
    if args.workers > 1 and not args.http_server:
        parser.error("--workers is for --http-server")
    if args.workers > 1 and args.db != "postgresql" and not args.database_url:
        parser.error("--workers > 1 needs PostgreSQL (--db postgresql)")
    with contextlib.ExitStack() as stack:
        url = args.database_url or ""
        if args.db == "postgresql" and not url:
            url = stack.enter_context(fresh_postgres_database())
        stack.enter_context(autoanalyze(url, enabled=args.autoanalyze))
        return asyncio.run(_main(args, url))


if __name__ == "__main__":
    sys.exit(main())
