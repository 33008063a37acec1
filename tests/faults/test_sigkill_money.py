"""The CSMS killed with SIGKILL while drivers top up, place orders, upload settlements and
confirm payments, started again on the same data; the clients retry what got no answer.

Afterwards every answer a client got is in the database, nothing is there twice, the ledger
and the orders' money agree, and the reconciliation report shows nothing stuck. An order
whose answer was lost in the kill (the client placed another) keeps its hold until its token
expires and its charger has synced, then it is released like any unused order.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import load_settings
from csms.payments.reaper import Reaper
from csms.store.db import Database
from csms.store.models import ChargerSync
from qr_extension.keys import SigningKey, generate_key
from qr_extension.settlement import build_settlement, sign_settlement
from qr_extension.start import StartAuthorization, read_start_token
from qr_extension.tariff import UsageBucket
from tests.faults.checks import assert_invariants, rows
from tests.faults.live import (
    CsmsProcess,
    Job,
    add_charger,
    kill_during,
    reconciliation,
    running_csms,
    sign_up,
)

pytestmark = pytest.mark.slow

CHARGER = "FAULTCP1"
DRIVERS = 3
TOP_UPS = 4  # per driver
TOP_UP = 20_000
ORDERS = 36
HOLD = 500


def top_up(auth: dict[str, str], key: str) -> Job:
    async def job(client: httpx.AsyncClient) -> httpx.Response:
        headers = {**auth, "Idempotency-Key": key}
        return await client.post(
            "/api/v1/me/wallet/top-ups", json={"amount": TOP_UP}, headers=headers
        )

    return job


def place(auth: dict[str, str], evse: int) -> Job:
    async def job(client: httpx.AsyncClient) -> httpx.Response:
        body = {"charger_id": CHARGER, "evse_id": evse, "amount": HOLD}
        return await client.post("/api/v1/orders", json=body, headers=auth)

    return job


def upload(auth: dict[str, str], token: str) -> Job:
    async def job(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/api/v1/settlements", json={"token": token}, headers=auth)

    return job


def confirm(auth: dict[str, str], payment_id: int) -> Job:
    async def job(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(f"/api/v1/payments/{payment_id}/confirm", headers=auth)

    return job


def settlement(order: dict[str, Any], key: SigningKey, seq: int, wh: int) -> str:
    """The charger's signed settlement of a one-minute session of ``order``."""
    auth = read_start_token(order["start_token"])
    assert isinstance(auth, StartAuthorization)
    start = auth.issued_at
    return sign_settlement(
        build_settlement(
            auth,
            audience="qrcharge",
            transaction_id=f"{seq:06d}-fault",
            started_at=start,
            stopped_at=start + 60,
            meter_start_wh=1000,
            meter_stop_wh=1000 + wh,
            usage=[UsageBucket(0, wh, 60, 0)],
            reason="EVDisconnected",
            seq=seq,
            offline=False,
            issued_at=start + 60,
        ),
        key,
    )


async def after_case(csms: CsmsProcess, client: httpx.AsyncClient) -> dict[str, Any]:
    """The checks after every case: invariants, and a report with nothing stuck."""
    await assert_invariants(csms.database_url)
    report = await reconciliation(client)
    assert report["counts"]["stuck_holds"] == 0, report["counts"]
    assert report["counts"]["disagreements"] == 0, report["counts"]
    return report


async def test_sigkill_during_top_ups_orders_uploads_and_confirms(
    tmp_path: Path, database_url: str
) -> None:
    rng = random.Random(13)
    key = generate_key()
    async with (
        running_csms(tmp_path / "csms", database_url) as csms,
        httpx.AsyncClient(base_url=csms.base_url, timeout=20) as client,
    ):
        await add_charger(client, CHARGER, "fault-charger-pw", key.public.to_jwk())
        drivers = [await sign_up(client, f"d{n}@example.org", 0) for n in range(DRIVERS)]

        # 1. top-ups, each with its own Idempotency-Key: a retry adds nothing
        jobs = [top_up(drivers[n % DRIVERS], f"top-up-{n}") for n in range(DRIVERS * TOP_UPS)]
        report = await kill_during(
            csms, jobs, concurrency=6, kill_after=rng.randint(3, 6), what="top-ups"
        )
        assert report.in_flight_at_kill > 0
        assert {a.status_code for a in report.answers} == {201}
        funds = TOP_UPS * TOP_UP
        for auth in drivers:
            me = (await client.get("/api/v1/me/wallet", headers=auth)).json()
            assert (me["balance"], me["held"]) == (funds, 0)
        await after_case(csms, client)

        # 2. orders: a lost answer is an order the driver never saw (placed again)
        owners = [n % DRIVERS for n in range(ORDERS)]
        jobs = [place(drivers[d], 1 + n % 2) for n, d in enumerate(owners)]
        report = await kill_during(
            csms, jobs, concurrency=8, kill_after=rng.randint(8, 16), what="orders"
        )
        assert report.in_flight_at_kill > 0
        assert {a.status_code for a in report.answers} == {201}
        orders = [a.json() for a in report.answers]
        seen = {o["id"] for o in orders}
        assert len(seen) == ORDERS
        stored = dict(await rows(database_url, "SELECT id, status FROM orders"))
        assert seen <= set(stored)  # every order a driver was given exists
        lost_answers = set(stored) - seen
        assert len(lost_answers) <= report.unanswered
        assert set(stored.values()) == {"created"}
        await after_case(csms, client)

        # 3. settlement uploads: a retry of an upload that landed finds the same payment
        tokens = [settlement(o, key, n + 1, 1000 + 100 * n) for n, o in enumerate(orders)]
        jobs = [upload(drivers[owners[n]], t) for n, t in enumerate(tokens)]
        report = await kill_during(
            csms, jobs, concurrency=8, kill_after=rng.randint(8, 16), what="settlement uploads"
        )
        assert report.in_flight_at_kill > 0
        assert {a.status_code for a in report.answers} == {200}, [
            a.text for a in report.answers if a.status_code != 200
        ]
        settled = [a.json() for a in report.answers]
        assert [s["order_id"] for s in settled] == [o["id"] for o in orders]
        payments = dict(
            await rows(database_url, "SELECT order_id, id FROM payments WHERE status = 'pending'")
        )
        assert {s["order_id"]: s["payment_id"] for s in settled} == payments
        records = Counter(
            r[0] for r in await rows(database_url, "SELECT order_id FROM settlements")
        )
        assert records == Counter(seen)  # one session record per order
        await after_case(csms, client)

        # 4. confirms: a retry returns the same receipt
        jobs = [confirm(drivers[owners[n]], s["payment_id"]) for n, s in enumerate(settled)]
        report = await kill_during(
            csms, jobs, concurrency=8, kill_after=rng.randint(8, 16), what="confirms"
        )
        assert report.in_flight_at_kill > 0
        assert {a.status_code for a in report.answers} == {200}
        receipts = {a.json()["payment_id"]: a.json()["id"] for a in report.answers}
        stored_receipts = dict(await rows(database_url, "SELECT payment_id, id FROM receipts"))
        assert receipts == stored_receipts
        captured = dict(
            await rows(
                database_url, "SELECT order_id, amount FROM payments WHERE status = 'captured'"
            )
        )
        assert captured == {s["order_id"]: s["amount"] for s in settled}
        final = await after_case(csms, client)
        assert final["counts"]["pending_payments"] == 0

        user_of = dict(await rows(database_url, "SELECT id, user_id FROM orders"))
        for d, auth in enumerate(drivers):
            uid = user_of[next(o["id"] for n, o in enumerate(orders) if owners[n] == d)]
            paid = sum(s["amount"] for n, s in enumerate(settled) if owners[n] == d)
            held = HOLD * sum(user_of[o] == uid for o in lost_answers)
            me = (await client.get("/api/v1/me/wallet", headers=auth)).json()
            assert (me["balance"], me["held"]) == (funds - paid - held, held)
        assert csms.kills == 4 and not csms.errors_logged(), csms.errors_logged()

    await released_in_time(database_url, lost_answers, tmp_path)


async def released_in_time(database_url: str, unused: set[str], tmp_path: Path) -> None:
    """The orders whose answers were lost are released like any unused order: after their
    token expired (with leeway) and their charger synced after that (a clock moved on)."""
    db = Database.connect(database_url)
    try:
        later = datetime.now(UTC) + timedelta(hours=1)
        async with db.session() as session:
            session.add(ChargerSync(charger_id=CHARGER, last_seq=0, updated_at=later))
            await session.commit()
        settings = load_settings(data_dir=tmp_path / "unused")
        reaper = Reaper(db, settings=settings, clock=lambda: later)
        released = await reaper.reap_once(later + timedelta(seconds=1))
        assert sorted(released.released) == sorted(unused)
    finally:
        await db.dispose()
    await assert_invariants(database_url)
    statuses = await rows(database_url, "SELECT status FROM orders")
    assert Counter(s for (s,) in statuses) == Counter(paid=ORDERS, expired=len(unused)) - Counter()
