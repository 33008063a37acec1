"""Payments benchmark: orders created/s and settlements verified and paid/s, one CSMS process.

What one CSMS process does per request, without HTTP framing: an order is the billing model
lookup, ``lim.amt``, the hold (a balanced ledger transfer under the wallet lock), the order row
and an ES256-signed start token; a settlement is the ES256 verification with the charger's key
looked up by (iss, kid), the match to the order's snapshot and the recomputed cost, the
settlement record and the pending payment, then the capture (capture + release transfers, the
receipt). ``--http`` runs the same through the FastAPI app in-process (httpx ASGI transport:
routing, validation, the driver's bearer token, JSON), which costs more; its client shares the
process. ``--http-server`` sends the same requests to ``qrcharge csms`` running in a process of
its own (uvicorn, as deployed) from a light keep-alive client here, and reports the CSMS
process's CPU.

Settlements are signed beforehand (that is the charger's work). ``--concurrency`` requests are
in flight at once, spread over ``--drivers`` wallets (each wallet is a lock).

    .venv/bin/python -m benchmarks.payments_bench                       # SQLite, ~30 s
    .venv/bin/python -m benchmarks.payments_bench --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench
    .venv/bin/python -m benchmarks.payments_bench --quick               # smoke run

The PostgreSQL database must exist and is emptied first. Exit code 1 with ``--check`` when a
SQLite run is below the target (500 orders/s and 500 settlements/s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import text

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
    return await place_order(
        bench.db,
        user_id=bench.users[i % len(bench.users)],
        request=OrderRequest(charger_id=charger_id, evse_id=1 + i % 2, amount=2000),
        settings=bench.settings,
        keys=bench.keys,
        now=datetime.now(UTC),
    )


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


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client (JSON bodies, Content-Length answers): cheap on
    CPU, so that the CSMS process, not the client, is what is measured."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: object = None
    ) -> tuple[int, Any]:
        if self._streams is None:
            self._streams = await asyncio.open_connection("127.0.0.1", self._port)
        reader, writer = self._streams
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", "Host: csms", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            head.append("Content-Type: application/json")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        payload = await reader.readexactly(length)
        return int(status_line.split()[1]), json.loads(payload) if payload else None

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_http_server(
    bench: Bench, count: int, concurrency: int, tmp: Path, url: str
) -> list[Rate]:
    """The same requests as ``--http``, to ``qrcharge csms`` in a process of its own (uvicorn,
    as deployed), from a light client in this one; CPU is the CSMS process's."""

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [str(Path(sys.executable).with_name("qrcharge")), "csms", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--log-level", "warning", "--data-dir", str(tmp)]
    cmd += ["--database-url", url]
    log = (tmp / "csms.log").open("wb")
    env = dict(os.environ, QRCHARGE_UPLOAD_RATE_PER_DRIVER="0", QRCHARGE_UPLOAD_RATE_PER_CLIENT="0")
    server = await asyncio.create_subprocess_exec(
        *cmd, stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        for _ in range(200):  # up when it answers
            try:
                probe_client = RawHttp(port)
                status_code, _ = await probe_client.request("GET", "/openapi.json", {})
                probe_client.close()
                if status_code == 200:
                    break
            except OSError:
                await asyncio.sleep(0.1)
        auth = _driver_headers(bench)
        clients = [RawHttp(port) for _ in range(concurrency)]
        free = list(clients)

        async def call(method: str, path: str, user: int, body: object = None) -> Any:
            client = free.pop()
            try:
                status_code, answer = await client.request(method, path, auth[user], body)
            finally:
                free.append(client)
            assert 200 <= status_code < 300, (status_code, answer)
            return answer

        async def order(i: int) -> str:
            user = bench.users[i % len(bench.users)]
            body = _order_body(i)
            made: dict[str, Any] = await call("POST", "/api/v1/orders", user, body)
            return str(made["id"])

        cpu, wall = _cpu_s(server.pid), time.perf_counter()
        ids = await _bounded([partial(order, i) for i in range(count)], concurrency)
        created = Rate(
            "HTTP orders created (CSMS process)", count, time.perf_counter() - wall,
            _cpu_s(server.pid) - cpu,
        )  # fmt: skip
        async with bench.db.session() as session:
            rows = [await session.get(Order, order_id) for order_id in ids]
        signed = [(row, _settlement(bench, row, i)) for i, row in enumerate(rows) if row]

        async def pay(row: Order, token: str) -> None:
            answer = await call("POST", "/api/v1/settlements", row.user_id, {"token": token})
            await call("POST", f"/api/v1/payments/{answer['payment_id']}/confirm", row.user_id)

        cpu, wall = _cpu_s(server.pid), time.perf_counter()
        await _bounded([partial(pay, row, token) for row, token in signed], concurrency)
        paid = Rate(
            "HTTP settlements verified + paid (CSMS process)", len(signed),
            time.perf_counter() - wall, _cpu_s(server.pid) - cpu,
        )  # fmt: skip
        for client in clients:
            client.close()
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)
        log.close()
    return [created, paid]


async def _main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="qrcharge-bench-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        backend = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
        bench = await setup(url, Path(tmp), args.drivers, funds=2000 * args.count)
        # as in the CSMS (csms/app.py): SQLite's WAL is checkpointed by a thread of its own
        checkpoints = asyncio.create_task(bench.db.run_checkpoints())
        try:
            if args.http_server:
                rates = await run_http_server(bench, args.count, args.concurrency, Path(tmp), url)
            else:
                runner = run_http if args.http else run_service
                rates = await runner(bench, args.count, args.concurrency)
        finally:
            checkpoints.cancel()
            await asyncio.gather(checkpoints, return_exceptions=True)
            await bench.db.dispose()
    print(
        f"payments bench: {backend}, {args.count} orders, concurrency {args.concurrency}, "
        f"{args.drivers} drivers, {_mode(args)}; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    for rate in rates:
        print("  " + rate.line())
    missed = [r for r in rates if r.per_s < TARGET_PER_S]
    if args.check and backend == "SQLite" and _mode(args) == "service" and missed:
        print(f"below the target of {TARGET_PER_S}/s: {[r.label for r in missed]}")
        return 1
    return 0


def _mode(args: argparse.Namespace) -> str:
    if args.http_server:
        return "HTTP to a CSMS process"
    return "HTTP in-process" if args.http else "service"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--count", type=int, default=2000, help="orders (and settlements)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--drivers", type=int, default=200, help="wallets the orders spread over")
    parser.add_argument("--http", action="store_true", help="through the FastAPI app (ASGI)")
    parser.add_argument(
        "--http-server",
        action="store_true",
        help="to `qrcharge csms` in a process of its own (CPU: the CSMS process's)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run (100 orders)")
    parser.add_argument("--check", action="store_true", help="exit 1 below the SQLite target")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.drivers = 100, 20
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
