"""The async engine, its sessions, and migrating a database to the current schema.

SQLite (aiosqlite) is the embedded default: WAL journal and a busy timeout so that readers
never block the single writer for long. PostgreSQL (asyncpg) is chosen by the URL.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from config.private import private_file
from csms.errors import StoreError
from csms.store.db_worker import DbWorker

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_POOL_SIZE = 6
# The OCPP hot path writes through one connection (csms/store/writer.py); the pool serves
# handshakes, authorization reads, the operator API, the message log and the payment side.
# A checkout waits at most POOL_TIMEOUT_S: the handshake then answers 503 + Retry-After and a
# CALL InternalError, instead of a charger timing out on silence.
PG_POOL_SIZE = 10  # defaults of the settings db_pool_size and db_max_overflow
PG_MAX_OVERFLOW = 10
POOL_TIMEOUT_S = 10
CHECKPOINT_EVERY_S = 1.0
# PostgreSQL: the store writer's lanes, one connection and thread each, a charger's writes
# always in the same lane so that lanes never lock each other's rows (setting
# db_writer_connections; --workers N shares them out, at least PG_MIN_WRITERS each); SQLite: one
PG_WRITER_CONNECTIONS = 3
PG_MIN_WRITERS = 2
# PostgreSQL: the threads that run the money side's units of work (csms.store.units_of_work
# in_worker), one connection each, so their round trips never wait for the event loop
PG_UNIT_CONNECTIONS = 3
# the reader thread, the background thread and the leader lock's session
PG_OTHER_CONNECTIONS = 3
# a worker's PostgreSQL connections outside its pool when several share the server
PG_FIXED_CONNECTIONS = PG_MIN_WRITERS + PG_UNIT_CONNECTIONS + PG_OTHER_CONNECTIONS
# connections of max_connections that --workers leaves to everything else (psql, backups,
# a migration, the supervisor)
PG_HEADROOM = 10
LOG = logging.getLogger("csms.store")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(
    url: str, *, pool_size: int = PG_POOL_SIZE, max_overflow: int = PG_MAX_OVERFLOW
) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL mode and its file created owner-only (its
    WAL and shared-memory files take the database file's mode). ``pool_size`` and
    ``max_overflow`` size PostgreSQL's pool (SQLite's is fixed)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            private_file(Path(path))  # password hashes and presence secrets: owner only
        # SQLite has one writer at a time: a few connections avoid lock ping-pong between
        # many writers (its busy handler sleeps up to 100 ms per retry).
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=0,
            pool_timeout=POOL_TIMEOUT_S,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=POOL_TIMEOUT_S,
    )
    event.listen(engine.sync_engine.pool, "checkout", _closed_at_checkout)
    return engine


def _closed_at_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuses a pooled asyncpg connection that the server has closed (a restart, a
    terminated backend): the pool drops it and checks out another.

    This replaces SQLAlchemy's ``pool_pre_ping``, which on asyncpg costs three round trips per
    checkout (BEGIN, an empty statement, ROLLBACK), as many as a small transaction's own: the
    connection's socket is watched by the event loop, so a server that closed it is known
    without asking. A connection that dies silently (a network cut) still fails its first
    statement, which the API answers 503 with Retry-After (csms/app.py)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def alembic_config(url: str | None = None) -> Config:
    """The Alembic configuration of the installed package (no ``alembic.ini`` needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def head_revision() -> str:
    """The newest migration this package holds (what :func:`migrate` brings a database to)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def schema_revision(conn: Connection) -> str | None:
    """The migration a database is at (None before the first)."""
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _checkpoint(conn: Connection) -> None:
    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").close()


def _upgrade(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


# PostgreSQL: the nodes of a cluster that start together migrate one after the other
MIGRATION_LOCK = 0x71726368_6D696772  # "qrch" "migr"


async def migrate(engine: AsyncEngine) -> None:
    """Brings the database up to the newest revision (idempotent). On PostgreSQL a
    transaction-scoped advisory lock makes processes that start at once on an empty database
    take turns: the first creates the schema, the others find it at the head."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        await conn.run_sync(_upgrade)


@dataclass(frozen=True, slots=True)
class Database:
    """The engine, its session factory and the database threads: what the rest of the CSMS
    is given. ``worker`` runs the hot paths' units of work (the writes); ``reader`` runs
    point reads on the hot paths (authorization lookups) on a connection of its own, so they
    never queue behind a group of writes (SQLite WAL: readers do not block the writer);
    ``background`` runs bulk housekeeping (the OCPP message log) in short transactions: its
    own thread on PostgreSQL, the hot paths' thread on SQLite (one writer at a time)."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    worker: DbWorker
    reader: DbWorker
    background: DbWorker
    checkpointer: DbWorker | None = None  # SQLite: WAL checkpoints, see run_checkpoints
    # the store writer's lanes: ``worker`` first, then (PostgreSQL) connections of their own
    more_writers: tuple[DbWorker, ...] = ()
    # PostgreSQL: the threads of the money side's units of work (in_worker); SQLite: none
    # (they run in ``worker``, the one writer)
    units: tuple[DbWorker, ...] = ()

    @property
    def writers(self) -> tuple[DbWorker, ...]:
        return (self.worker, *self.more_writers)

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        writer_connections: int = PG_WRITER_CONNECTIONS,
        unit_connections: int = PG_UNIT_CONNECTIONS,
        pool_size: int = PG_POOL_SIZE,
        max_overflow: int = PG_MAX_OVERFLOW,
    ) -> Database:
        engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        sqlite = url.startswith("sqlite")
        # On SQLite the hot paths' thread never checkpoints the WAL itself (an automatic
        # checkpoint stalls the commit that triggers it): a thread of its own does it, PASSIVE,
        # every CHECKPOINT_EVERY_S (run_checkpoints).
        worker = DbWorker(
            engine,
            url,
            sqlite_pragmas=_sqlite_pragmas,
            extra_sqlite=("PRAGMA wal_autocheckpoint=0",),
        )
        # SQLite has one writer at a time, and a writer that finds the file locked sleeps in
        # SQLite's busy handler (1, 2, 5 ... 100 ms): its bulk writes share the hot paths'
        # thread instead of fighting it for the lock from a connection of their own.
        background = (
            worker
            if sqlite
            else DbWorker(engine, url, sqlite_pragmas=_sqlite_pragmas, name="db-background")
        )
        checkpointer = (
            DbWorker(engine, url, sqlite_pragmas=_sqlite_pragmas, name="db-checkpoint")
            if sqlite and worker.threaded
            else None
        )
        # PostgreSQL serves several writers at once; the writer's statements are round trips,
        # so a lane per connection overlaps them (threads wait without the GIL)
        more_writers = (
            ()
            if sqlite or not worker.threaded
            else tuple(
                DbWorker(engine, url, sqlite_pragmas=_sqlite_pragmas, name=f"db-worker-{n}")
                for n in range(1, writer_connections)
            )
        )
        # the money side's units of work: several at once (each waits for its round trips
        # in its own thread, without the GIL and without a turn of the event loop)
        units = (
            ()
            if sqlite or not worker.threaded
            else tuple(
                DbWorker(engine, url, sqlite_pragmas=_sqlite_pragmas, name=f"db-units-{n}")
                for n in range(unit_connections)
            )
        )
        return cls(
            engine,
            async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False),
            worker,
            DbWorker(
                engine, url, sqlite_pragmas=_sqlite_pragmas, name="db-reader", reads_only=True
            ),
            background,
            checkpointer,
            more_writers,
            units,
        )

    async def run_checkpoints(self, every_s: float = CHECKPOINT_EVERY_S) -> None:
        """Checkpoints SQLite's WAL every ``every_s`` (PASSIVE: never waits for readers or
        the writer) until cancelled; returns at once on PostgreSQL. Run as an owned task."""
        if self.checkpointer is None:
            return
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.checkpointer.run_connection(_checkpoint)
            except Exception as exc:  # informative: the next one tries again
                LOG.warning("WAL checkpoint failed: %s", exc)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.worker.close()
        await self.reader.close()
        if self.background is not self.worker:
            await self.background.close()
        if self.checkpointer is not None:
            await self.checkpointer.close()
        for writer in (*self.more_writers, *self.units):
            await writer.close()
        await self.engine.dispose()


class ConnectionBudgetError(StoreError, ValueError):
    """The server's ``max_connections`` cannot give every worker a usable pool."""


def fixed_connections(writers: int) -> int:
    """A process's PostgreSQL connections outside its pool, with ``writers`` writer lanes."""
    return writers + PG_UNIT_CONNECTIONS + PG_OTHER_CONNECTIONS


def share_writers(writers: int, workers: int) -> int:
    """The writer lanes each of ``workers`` processes gets of the ``writers`` configured for
    one: shared out like the load (each worker has 1/N of it), at least
    :data:`PG_MIN_WRITERS` (or ``writers``, if fewer), so that N workers do not multiply the
    server's connections."""
    return max(min(PG_MIN_WRITERS, writers), -(-writers // workers))


def share_connections(
    max_connections: int,
    reserved: int,
    workers: int,
    pool_size: int,
    max_overflow: int,
    fixed: int = PG_FIXED_CONNECTIONS,
) -> tuple[int, int]:
    """The pool size and overflow each of ``workers`` processes may use so that together, at
    their peak, they stay within the server's ``max_connections`` (less the superuser's
    ``reserved`` ones and :data:`PG_HEADROOM`); ``fixed``: each one's connections outside
    its pool (:func:`fixed_connections`).

    The configured figures are kept when they fit; otherwise both shrink in their ratio. A
    worker that would get fewer than two pooled connections is refused: raise the server's
    ``max_connections`` or run fewer workers.
    """
    per_worker = (max_connections - reserved - PG_HEADROOM) // workers - fixed
    if pool_size + max_overflow <= per_worker:
        return pool_size, max_overflow
    if per_worker < 2:
        raise ConnectionBudgetError(
            f"PostgreSQL's max_connections={max_connections} (superuser reserved {reserved}) "
            f"leaves {max(per_worker, 0)} pooled connections per worker for {workers} workers "
            f"({fixed} more each are the writers, units, reader, background and leader "
            f"connections, {PG_HEADROOM} are left for other clients): raise max_connections "
            "or run fewer workers"
        )
    pool = max(1, per_worker * pool_size // (pool_size + max_overflow))
    return pool, per_worker - pool


async def server_connection_limits(engine: AsyncEngine) -> tuple[int, int]:
    """PostgreSQL's ``max_connections`` and ``superuser_reserved_connections``."""
    async with engine.connect() as conn:
        limit = (await conn.execute(text("SHOW max_connections"))).scalar_one()
        reserved = (await conn.execute(text("SHOW superuser_reserved_connections"))).scalar_one()
    return int(limit), int(reserved)
