"""Several processes starting at once on an empty data directory (``--workers N``, or nodes
sharing a key directory) end up with one signing key and one driver-token secret: the first
run's files are linked into place, and a loser uses the winner's. Nodes starting at once on
an empty PostgreSQL database migrate it one after the other."""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from csms.drivers.tokens import load_or_create_secret
from csms.keys import KeyManager
from csms.store.db import Database, head_revision, migrate, schema_revision
from tests.csms.conftest import _reset_pg, pg_url

__all__ = ["pg_url"]

PROCESSES = 6


def _open(key_dir: Path, go: Event, out: multiprocessing.Queue[tuple[str, str]]) -> None:
    go.wait()
    manager = KeyManager.open(key_dir, now=1_000, prepublish_s=60, token_lifetime_s=600)
    secret = load_or_create_secret(key_dir)
    out.put((manager.active_signing_key(1_000).kid, secret.hex()))


def test_processes_starting_together_agree_on_the_first_key_and_secret(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    go, out = context.Event(), context.Queue()
    key_dir = tmp_path / "keys"
    procs = [context.Process(target=_open, args=(key_dir, go, out)) for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    go.set()
    seen = {out.get(timeout=30) for _ in procs}
    for proc in procs:
        proc.join(10)
        assert proc.exitcode == 0
    assert len(seen) == 1
    ((kid, _secret),) = seen
    assert sorted(p.name for p in key_dir.iterdir() if not p.name.startswith(".")) == sorted(
        [f"{kid}.pem", "driver-token.secret", "manifest.json"]
    )
    reopened = KeyManager.open(key_dir, now=2_000, prepublish_s=60, token_lifetime_s=600)
    assert [k.key.kid for k in reopened.keys] == [kid]


def test_a_rotation_keeps_a_key_another_process_added(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    one = KeyManager.open(key_dir, now=1_000, prepublish_s=60, token_lifetime_s=600)
    two = KeyManager.open(key_dir, now=1_000, prepublish_s=60, token_lifetime_s=600)
    added_by_one = one.rotate(2_000)
    added_by_two = two.rotate(3_000)  # two had not seen one's key: the manifest keeps both
    kids = [k.key.kid for k in KeyManager.open(
        key_dir, now=4_000, prepublish_s=60, token_lifetime_s=600
    ).keys]  # fmt: skip
    assert added_by_one.key.kid in kids and added_by_two.key.kid in kids and len(kids) == 3


@pytest.mark.postgres
async def test_nodes_migrating_an_empty_database_at_once_take_turns(pg_url: str) -> None:
    await _reset_pg(pg_url)
    databases = [Database.connect(pg_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(db.engine) for db in databases))
        async with databases[0].engine.connect() as conn:
            assert await conn.run_sync(schema_revision) == head_revision()
    finally:
        for db in databases:
            await db.dispose()
