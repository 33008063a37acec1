"""The election on PostgreSQL (a session-level advisory lock on a connection of its own), and
on SQLite (one process: always the leader)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from csms.cluster.leader import Leadership
from csms.store.leader_lock import LEADER_KEY, LeaderLock, holder
from tests.csms.conftest import LiveCsms, make_settings, pg_url, serve

__all__ = ["pg_url"]

FAST = {"heartbeat_s": 0.1, "lease_s": 1.0, "retry_s": 0.1}


def lock(url: str, node: str, lease_s: float = 1.0) -> LeaderLock:
    return LeaderLock(url, node_id=node, lease_s=lease_s, timeout_s=1.0)


def counting(runs: list[str], name: str) -> Callable[[], Coroutine[Any, Any, None]]:
    async def job() -> None:
        runs.append(name)
        await asyncio.Event().wait()

    return job


async def until(check: Callable[[], bool], timeout_s: float = 5.0) -> float:
    """Waits for ``check``; the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not check():
        assert loop.time() - start < timeout_s, "not within the time"
        await asyncio.sleep(0.02)
    return loop.time() - start


async def leader_name(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await holder(conn)
    finally:
        await engine.dispose()


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[tuple[list[Leadership], list[str]]]:
    runs: list[str] = []
    elected = [
        Leadership(lock(pg_url, name), node_id=name, jobs=[("job", counting(runs, name))], **FAST)
        for name in ("n1", "n2", "n3")
    ]
    tasks = [asyncio.create_task(node.run()) for node in elected]
    try:
        yield elected, runs
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.postgres
async def test_one_leader_and_a_takeover_when_its_session_dies(
    pg_url: str, nodes: tuple[list[Leadership], list[str]]
) -> None:
    elected, runs = nodes
    await until(lambda: sum(n.is_leader for n in elected) == 1)
    await asyncio.sleep(0.5)  # followers keep asking: still one
    (first,) = [n for n in elected if n.is_leader]
    assert runs == [first.node_id]
    assert await leader_name(pg_url) == f"qrcharge-leader {first.node_id}"

    # the leader's session ends (as when its process is killed): the server frees the lock
    admin = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1",
            f"qrcharge-leader {first.node_id}",
        )
    finally:
        await admin.close()
    assert killed == 1
    took = await until(lambda: any(n.is_leader for n in elected if n is not first))
    assert took < 2.0
    await until(lambda: not first.is_leader)  # its next heartbeat fails: it steps down
    assert sum(n.is_leader for n in elected) == 1
    # the new leader's jobs are tasks that start at the loop's next turn, not with the flag
    await until(lambda: len(runs) == 2)
    assert runs[1] != first.node_id


@pytest.mark.postgres
async def test_a_silent_leader_loses_the_lock_to_the_server(pg_url: str) -> None:
    """A hung leader (no heartbeat for the lease) is disconnected by the server
    (idle_session_timeout): the lock is free for another node, and the hung one learns at its
    next heartbeat that it lost."""
    hung, other = lock(pg_url, "hung", lease_s=1.0), lock(pg_url, "other", lease_s=1.0)
    try:
        assert await hung.try_acquire()
        assert not await other.try_acquire()
        await asyncio.sleep(1.6)  # silent longer than the lease
        assert await other.try_acquire()
        assert not await hung.held()
        assert await other.held()
    finally:
        await hung.close()
        await other.close()


@pytest.mark.postgres
async def test_a_late_heartbeat_ends_the_term_before_the_database_is_asked() -> None:
    """A loop blocked longer than the lease steps down at once (another node may lead)."""

    class Lock:
        asked = 0

        async def try_acquire(self) -> bool:
            return True

        async def held(self) -> bool:
            self.asked += 1
            return True

        async def close(self) -> None:
            return None

    now = [0.0]
    the_lock = Lock()
    runs: list[str] = []
    node = Leadership(
        the_lock, node_id="n", jobs=[("job", counting(runs, "n"))], heartbeat_s=0.05,
        lease_s=1.0, retry_s=10, monotonic=lambda: now[0],
    )  # fmt: skip
    task = asyncio.create_task(node.run())
    try:
        await until(lambda: the_lock.asked >= 2)
        now[0] += 5  # as if the loop had been blocked for 5 s
        await until(lambda: not node.is_leader)
        asked = the_lock.asked
        await asyncio.sleep(0.2)
        assert the_lock.asked == asked  # stepped down without asking, waits to retry
        assert node.terms == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_on_sqlite_the_one_process_leads_and_says_so(tmp_path: Path) -> None:
    async with serve(make_settings(tmp_path, node_id="solo")) as live:
        await wait_leader(live)
        health = await live.http.get("/healthz")
        assert health.json() == {"status": "ok", "node": "solo", "leader": True}
        assert health.headers["x-qrcharge-node"] == "solo"
        metrics = (await live.http.get("/metrics")).text
        assert "qrcharge_leader 1.0" in metrics
        assert 'qrcharge_node_info{node="solo"} 1.0' in metrics


@pytest.mark.postgres
async def test_two_csms_on_one_postgresql_one_runs_the_reaper(tmp_path: Path, pg_url: str) -> None:
    from tests.csms.conftest import _reset_pg

    await _reset_pg(pg_url)
    fast = {"leader_heartbeat_s": 0.1, "leader_lease_s": 1, "leader_retry_s": 0.1}
    async with (
        serve(make_settings(tmp_path / "a", database_url=pg_url, node_id="a", **fast)) as a,
        serve(make_settings(tmp_path / "b", database_url=pg_url, node_id="b", **fast)) as b,
    ):
        await until(lambda: leading(a) or leading(b))
        await asyncio.sleep(0.3)
        states = [(await n.http.get("/healthz")).json()["leader"] for n in (a, b)]
        assert sorted(states) == [False, True]
        tasks = {t.get_name() for t in asyncio.all_tasks()}
        assert "payments-reaper" in tasks  # one reaper among the two
        assert sum(t.get_name() == "payments-reaper" for t in asyncio.all_tasks()) == 1


def leading(live: LiveCsms) -> bool:
    leadership = live.ctx.leadership
    return leadership is not None and leadership.is_leader


async def wait_leader(live: LiveCsms) -> None:
    await until(lambda: leading(live))


@pytest.mark.postgres
async def test_the_holder_is_this_databases_leader_not_another_clusters(pg_url: str) -> None:
    """Advisory locks are per database, but ``pg_locks`` lists every database of the server:
    another cluster's leader on the same server (here: in the database ``test``) is not ours."""
    elsewhere = await asyncpg.connect(
        "postgresql://postgres@127.0.0.1:5432/test",
        server_settings={"application_name": "qrcharge-leader another-cluster"},
    )
    try:
        await elsewhere.execute("SELECT pg_advisory_lock($1)", LEADER_KEY)
        assert await leader_name(pg_url) is None
        ours = lock(pg_url, "ours")
        assert await ours.try_acquire()
        try:
            assert await leader_name(pg_url) == "qrcharge-leader ours"
        finally:
            await ours.close()
    finally:
        await elsewhere.close()
