"""The load run's HTTP side: what an operator and drivers do through the CSMS's APIs.

Before the load: the fleet is registered in bulk (``POST /api/v1/admin/chargers/bulk``, the
passwords as argon2id hashes made here, as a provisioning tool would), every charger's RFID
tag is registered (``PUT /api/v1/admin/id-tags``), drivers sign up and in, top their wallets
up through the payment provider (the sandbox) and place the orders the paid chargers will
start. After the load: each driver finds the payment of each settled order and confirms it
(the capture). Every request counts; a refusal is an error of the run, never skipped.
"""

from __future__ import annotations

import asyncio
import functools
import math
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.ocpp_load_client import HOST, ChargerSpec

BULK_CHUNK = 1000  # the bulk route's limit
ORDER_AMOUNT = 1000  # minor units: each order's requested amount (= its hold)
TOP_UP_MAX = 100_000  # the default max_top_up_amount
RESEND_PAUSE_S = 0.2
KEEPALIVE_S = 2.0  # under the CSMS's (uvicorn's) timeout_keep_alive of 5 s


class SetupError(Exception):
    """A request of the run's set-up or capture was refused."""


@dataclass(slots=True)
class Driver:
    email: str
    headers: dict[str, str]


@dataclass(slots=True)
class HttpStats:
    """What the run did over HTTP, with wall times (seconds)."""

    seconds: dict[str, float] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


async def bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], concurrency: int) -> list[Any]:
    """Runs ``jobs`` at most ``concurrency`` at a time; results in order."""
    results: list[Any] = [None] * len(jobs)
    queue = list(range(len(jobs)))[::-1]

    async def worker() -> None:
        while queue:
            i = queue.pop()
            results[i] = await jobs[i]()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(jobs))))))
    return results


def _check(response: httpx.Response, *expected: int) -> Any:
    if response.status_code not in expected:
        raise SetupError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response.json() if response.content else None


class Api:
    """The CSMS's HTTP API at ``port`` on 127.0.0.1, as the operator (admin key) and drivers."""

    def __init__(self, port: int, admin_key: str, concurrency: int) -> None:
        self.concurrency = concurrency
        self.stats = HttpStats()
        self.port = port
        self.http = self.reopen()
        self.admin = {"Authorization": f"Bearer {admin_key}"}
        self.tags: list[str] = []

    def reopen(self) -> httpx.AsyncClient:
        """A client for the running event loop (each phase of the run has its own)."""
        n = self.concurrency
        # an idle connection is dropped well before uvicorn's keep-alive timeout (5 s, httpx's
        # default expiry too): reused at 4.99 s, the server may close it as the request leaves
        limits = httpx.Limits(
            max_connections=n, max_keepalive_connections=n, keepalive_expiry=KEEPALIVE_S
        )
        self.http = httpx.AsyncClient(
            base_url=f"http://{HOST}:{self.port}", timeout=120, limits=limits
        )
        return self.http

    async def close(self) -> None:
        await self.http.aclose()

    async def idempotent(self, method: str, path: str, **options: Any) -> httpx.Response:
        """A request that may be sent twice (a PUT, a GET): sent once more when the kept-alive
        connection it went out on was closed under it (the server's keep-alive timeout can
        close an idle connection just as a request leaves on it; httpx does not resend).
        Counted as ``resent_<error>``."""
        try:
            return await self.http.request(method, path, **options)
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            self.stats.counts[f"resent_{type(exc).__name__}"] += 1
        await asyncio.sleep(RESEND_PAUSE_S)
        return await self.http.request(method, path, **options)

    async def register_fleet(self, specs: Sequence[ChargerSpec], password_hash: str) -> int:
        """Registers the chargers in chunks of :data:`BULK_CHUNK`, all or none per chunk. In a
        database kept from an earlier run some exist already (409: nothing of the chunk was
        added). Fleets are prefixes of one id sequence (``LOAD00000``...), so what exists is a
        prefix too: a refused chunk whose last charger exists is there whole; any other is
        halved until each part is added or there already. How many were added."""
        started = time.monotonic()
        chunks = [specs[i : i + BULK_CHUNK] for i in range(0, len(specs), BULK_CHUNK)]

        async def chunk(part: Sequence[ChargerSpec]) -> int:
            body = {
                "chargers": [
                    {"id": s.charger_id, "password_hash": password_hash, "location": "bench"}
                    for s in part
                ]
            }
            r = await self.http.post("/api/v1/admin/chargers/bulk", json=body, headers=self.admin)
            if r.status_code == 409:  # a kept database: some of them exist
                last = f"/api/v1/admin/chargers/{part[-1].charger_id}"
                if len(part) == 1 or (await self.http.get(last, headers=self.admin)).is_success:
                    return 0
                half = len(part) // 2
                return await chunk(part[:half]) + await chunk(part[half:])
            return int(_check(r, 201)["created"])

        added = int(sum(await bounded([functools.partial(chunk, c) for c in chunks], 2)))
        self.stats.seconds["register_chargers"] = time.monotonic() - started
        self.stats.counts["chargers_registered"] = added
        return added

    async def register_tags(self, tags: Sequence[str]) -> None:
        started = time.monotonic()

        async def put(tag: str) -> None:
            body = {"id_tag": tag, "status": "Accepted"}
            r = await self.idempotent("PUT", "/api/v1/admin/id-tags", json=body, headers=self.admin)
            _check(r, 200)

        await bounded([functools.partial(put, t) for t in tags], self.concurrency)
        self.stats.seconds["register_tags"] = time.monotonic() - started
        self.stats.counts["tags_registered"] = len(tags)
        self.tags = list(tags)

    async def drivers(self, count: int, orders_each: int) -> list[Driver]:
        """``count`` new drivers, each signed in with a wallet for ``orders_each`` holds."""
        started = time.monotonic()
        nonce = secrets.token_hex(4)
        funds = orders_each * ORDER_AMOUNT

        async def make(n: int) -> Driver:
            email, password = f"load-{nonce}-{n}@bench.example.org", secrets.token_urlsafe(12)
            body = {"email": email, "password": password}
            _check(await self.http.post("/api/v1/users", json=body), 201)
            form = {"username": email, "password": password}
            token = _check(await self.http.post("/api/v1/token", data=form), 200)
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            left, k = funds, 0
            while left > 0:
                amount = min(left, TOP_UP_MAX)
                r = await self.http.post(
                    "/api/v1/me/wallet/top-ups",
                    json={"amount": amount},
                    headers={**headers, "Idempotency-Key": f"{nonce}-{n}-{k}"},
                )
                _check(r, 201)
                left, k = left - amount, k + 1
                self.stats.counts["top_ups"] += 1
            return Driver(email, headers)

        made: list[Driver] = await bounded([functools.partial(make, n) for n in range(count)], 8)
        self.stats.seconds["drivers"] = time.monotonic() - started
        self.stats.counts["drivers"] = count
        return made

    async def place_orders(
        self, wanted: Sequence[tuple[str, Driver]]
    ) -> list[tuple[str, str, Driver]]:
        """One order per (charger, driver): (order id, start token, driver), in that order."""
        started = time.monotonic()

        async def place(charger_id: str, driver: Driver) -> tuple[str, str, Driver]:
            body = {"charger_id": charger_id, "evse_id": 1, "amount": ORDER_AMOUNT}
            made = _check(
                await self.http.post("/api/v1/orders", json=body, headers=driver.headers), 201
            )
            return str(made["id"]), str(made["start_token"]), driver

        placed: list[tuple[str, str, Driver]] = await bounded(
            [functools.partial(place, c, d) for c, d in wanted], self.concurrency
        )
        took = time.monotonic() - started
        self.stats.seconds["place_orders"] = took
        self.stats.counts["orders_placed"] = len(placed)
        return placed

    async def capture(self, orders: Sequence[tuple[str, Driver]]) -> Counter[str]:
        """Each driver confirms the payment of each of its orders that has one: the capture.
        Counts ``captured`` and the orders without a payment (``no_payment``)."""
        started = time.monotonic()
        outcome: Counter[str] = Counter()

        async def confirm(order_id: str, driver: Driver) -> None:
            r = await self.idempotent("GET", f"/api/v1/orders/{order_id}", headers=driver.headers)
            order = _check(r, 200)
            if order.get("payment_id") is None:
                outcome["no_payment"] += 1
                return
            r = await self.http.post(
                f"/api/v1/payments/{order['payment_id']}/confirm", headers=driver.headers
            )
            _check(r, 200)
            outcome["captured"] += 1

        await bounded([functools.partial(confirm, o, d) for o, d in orders], self.concurrency)
        self.stats.seconds["capture"] = time.monotonic() - started
        self.stats.counts.update({f"capture_{k}": v for k, v in outcome.items()})
        return outcome


def orders_per_paid_charger(rate: float, duration_s: float, chargers: int, cycle: int) -> int:
    """Sessions one charger starts in the load phase (one per cycle of ``cycle`` messages),
    plus one: a charger that runs out of orders starts with its RFID tag instead."""
    per_charger = rate * duration_s / chargers
    return math.ceil(per_charger / cycle) + 1
