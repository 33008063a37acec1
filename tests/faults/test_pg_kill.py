"""PostgreSQL's connections killed under load: while chargers send transactions, every
connection of the CSMS's database is terminated (``pg_terminate_backend``), several times.

The CSMS must recover without a restart: every CALL is answered (a CALLERROR is acceptable
while the database is gone, silence is not), no charger's connection drops, and everything it
answered with a CALLRESULT is stored and billed once.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import Connection

from csms.store import db_worker
from csms.store.db import Database
from tests.csms.conftest import LiveCsms, _reset_pg, make_settings, serve
from tests.faults import tally
from tests.faults.checks import SAMPLES, assert_invariants, check_transactions, ocpp_cost, rows
from tests.faults.wire_charger import WireCharger

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PASSWORD = "pg-kill-charger-pw"
KILLS = 5
TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


async def kill_connections(dsn: str, kills: int, every_s: float) -> list[int]:
    """Terminates every other connection to the database every ``every_s`` until it has
    terminated some ``kills`` times; how many each time."""
    killed: list[int] = []
    conn = await asyncpg.connect(dsn)
    try:
        while sum(n > 0 for n in killed) < kills:
            await asyncio.sleep(every_s)
            killed.append(int(await conn.fetchval(TERMINATE)))
    finally:
        await conn.close()
    return killed


async def keep_ordering(
    csms: LiveCsms, driver: dict[str, str], killer: asyncio.Task[list[int]]
) -> dict[int, list[str]]:
    """A driver placing orders while the connections are killed: what each answer was."""
    answers: dict[int, list[str]] = {}
    body = {"charger_id": "PGK0", "evse_id": 1, "amount": 100}
    while not killer.done():
        r = await csms.http.post("/api/v1/orders", json=body, headers=driver)
        answers.setdefault(r.status_code, []).append(
            r.json()["id"] if r.status_code == 201 else r.text
        )
        await asyncio.sleep(0.05)
    return answers


async def test_killed_database_connections_under_load(tmp_path: Path, pg_url: str) -> None:
    rng = random.Random(5432)
    await _reset_pg(pg_url)
    settings = make_settings(tmp_path, database_url=pg_url, auto_capture_s=3600)
    async with serve(settings) as csms:
        driver = await csms.driver("pg@example.org")
        r = await csms.http.post(
            "/api/v1/me/wallet/top-ups", json={"amount": 90_000}, headers=driver
        )
        assert r.status_code == 201, r.text
        chargers: list[WireCharger] = []
        energy: dict[str, int] = {}
        for n, version in enumerate(["1.6", "2.0.1"] * 3):
            charger_id = f"PGK{n}"
            await csms.add_charger(charger_id, PASSWORD)
            cp = WireCharger(csms.ws_url(charger_id), charger_id, PASSWORD, version)
            cp.pace_s, cp.retry_callerror_s = 0.05, 0.1  # the kills land while they send
            for t in range(4):
                body = {"charger_id": charger_id, "evse_id": 1 + t % 2, "amount": 2000}
                r = await csms.http.post("/api/v1/orders", json=body, headers=driver)
                assert r.status_code == 201, r.text
                step = 100 + 10 * rng.randint(0, 30)
                energy[r.json()["id"]] = step * (SAMPLES + 1)
                add = cp.transaction16 if version == "1.6" else cp.transaction201
                add(f"T{t}", r.json()["id"], 1 + t % 2, meter=1000 * t, samples=SAMPLES, step=step)
            cp.data_transfer("Synced", json.dumps({"seq": 0}))
            chargers.append(cp)

        dsn = pg_url.replace("postgresql+asyncpg", "postgresql")
        killer = asyncio.create_task(kill_connections(dsn, KILLS, every_s=0.2))
        ordering = asyncio.create_task(keep_ordering(csms, driver, killer))
        await asyncio.wait_for(asyncio.gather(*(cp.run() for cp in chargers)), 90)
        assert killer.done(), "the chargers were done before the last kill"
        killed = await killer
        answers = await ordering
        tally.injected("PostgreSQL connections terminated under load", len(killed))

        for cp in chargers:
            assert cp.connections == 1, (cp.charger_id, cp.connections)  # never dropped
            assert cp.unanswered == 0, cp.charger_id  # never silence
            for a in cp.answered:  # no start was refused for the database's sake
                info = a.answer.get("idTagInfo") or a.answer.get("idTokenInfo")
                assert info is None or info["status"] == "Accepted", (cp.charger_id, a)
        errors = [e for cp in chargers for e in cp.callerrors]
        assert {code for _, code in errors} <= {"InternalError"}, errors
        tally.unanswered("PostgreSQL connections terminated under load", len(errors))

        statuses = await rows(pg_url, "SELECT id_tag_status, flags FROM transactions")
        assert set(statuses) == {("Accepted", "")}, statuses
        await check_transactions(pg_url, chargers)
        payments = await rows(pg_url, "SELECT order_id, amount FROM payments")
        assert dict(payments) == {o: ocpp_cost(wh) for o, wh in energy.items()}
        # the API said when the database was gone (503: retry), and what it accepted is kept
        assert set(answers) <= {201, 503}, answers
        placed = {order_id for (order_id,) in await rows(pg_url, "SELECT id FROM orders")}
        assert set(answers[201]) <= placed
        await assert_invariants(pg_url)
        counts = (await csms.http.get("/api/v1/admin/reconciliation")).json()["counts"]
        assert counts["settled_by_ocpp_only"] == len(energy), counts
        assert counts["stuck_holds"] == counts["disagreements"] == 0, counts
        # and both sides work again without a restart
        body = {"charger_id": "PGK0", "evse_id": 1, "amount": 500}
        r = await csms.http.post("/api/v1/orders", json=body, headers=driver)
        assert r.status_code == 201, r.text


def _backend_pid(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


async def test_a_database_thread_replaces_its_killed_connection(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database threads hold their connections for life (no pool checkout to pre-ping
    them): the reader reads again on a new connection, and a writer's connection idle for a
    while is pinged and replaced, so neither fails a unit for a connection the server dropped."""
    await _reset_pg(pg_url)
    db = Database.connect(pg_url)
    try:
        reader, writer = await db.reader.run(_backend_pid), await db.worker.run(_backend_pid)
        conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            for pid in (reader, writer):
                assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await conn.close()
        assert await db.reader.run(_backend_pid) != reader
        monkeypatch.setattr(db_worker, "IDLE_PING_S", 0.0)  # idle long enough: pinged
        assert await db.worker.run(_backend_pid) != writer
        tally.injected("PostgreSQL connections terminated while idle", 2)
    finally:
        await db.dispose()
