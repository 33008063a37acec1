"""The cluster's leader lock: a PostgreSQL session-level advisory lock on a connection of its own.

Whoever holds the lock leads; the lock lives exactly as long as the session that took it, so
it is given back by the server when the process dies (its socket closes), when the machine or
the network goes (TCP keepalives end the session), and when the process hangs: the session
sets ``idle_session_timeout`` to the lease, and a leader that sends no heartbeat for that long
is disconnected by the server. Advisory locks are scoped to the database, so clusters on
different databases of one server never meet.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

LOG = logging.getLogger("csms.leader")
# an arbitrary 64-bit key, fixed: every node of a cluster (one database) asks for the same one
LEADER_KEY = 0x71726368_6C656164  # "qrch" "lead"
_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    " AND granted AND ((classid::bigint << 32) | objid::bigint) = :key"
)


class LeaderLock:
    """One node's connection for the election: :meth:`try_acquire`, :meth:`held`,
    :meth:`close`. Each call is bounded by ``timeout_s``; a broken connection is reported as
    not holding the lock and is opened again by the next :meth:`try_acquire`."""

    def __init__(self, url: str, *, node_id: str, lease_s: float, timeout_s: float) -> None:
        self._url = url
        self._node_id = node_id
        self._lease_s = lease_s
        self._timeout_s = timeout_s
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None

    async def _connection(self) -> AsyncConnection:
        if self._conn is not None:
            return self._conn
        if self._engine is None:
            keepalive = max(1, int(self._lease_s / 4))
            self._engine = create_async_engine(
                self._url,
                poolclass=NullPool,
                connect_args={
                    "timeout": self._timeout_s,
                    "server_settings": {
                        "application_name": f"qrcharge-leader {self._node_id}"[:63],
                        # the server ends the session of a vanished peer within ~lease
                        "tcp_keepalives_idle": str(keepalive),
                        "tcp_keepalives_interval": str(keepalive),
                        "tcp_keepalives_count": "3",
                    },
                },
            )
        conn = await self._engine.connect()
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        version = (await conn.execute(text("SHOW server_version_num"))).scalar_one()
        if int(version) >= 140000:  # a leader that stops sending heartbeats loses the lock
            await conn.execute(text(f"SET idle_session_timeout = {int(self._lease_s * 1000)}"))
        else:
            LOG.warning("PostgreSQL < 14: a hung leader keeps the lock until its socket dies")
        self._conn = conn
        return conn

    async def try_acquire(self) -> bool:
        """True when this session holds the lock now (already held counts: it is re-entrant
        per session, so it is asked only when not held). A connection the server closed
        meanwhile (a follower idle longer than the lease) is opened again once."""
        for _attempt in range(2):
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await self._try_acquire()
            except Exception as exc:
                LOG.debug("leader lock: no answer (%s)", exc)
                await self._drop()
        return False

    async def _try_acquire(self) -> bool:
        conn = await self._connection()
        if (await conn.execute(_HELD, {"key": LEADER_KEY})).scalar_one():
            return True
        got = await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_KEY})
        return bool(got.scalar_one())

    async def held(self) -> bool:
        """The heartbeat: True when the session answers and still holds the lock."""
        if self._conn is None:
            return False
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await self._conn.execute(_HELD, {"key": LEADER_KEY})
            return bool(result.scalar_one())
        except Exception as exc:
            LOG.warning("leader lock: heartbeat failed (%s)", exc)
            await self._drop()
            return False

    async def _drop(self) -> None:
        """Closes the connection (the server frees the lock with the session)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                async with asyncio.timeout(self._timeout_s):
                    await conn.close()
            except Exception:
                await conn.invalidate()

    async def close(self) -> None:
        await self._drop()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


async def holder(conn: AsyncConnection) -> str | None:
    """The ``application_name`` of the session holding the leader lock of this database (None:
    nobody). ``pg_locks`` lists the locks of every database on the server, and another cluster
    on the same server has a leader lock of its own under the same key."""
    row = await conn.execute(
        text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = :key"
        ),
        {"key": LEADER_KEY},
    )
    return row.scalar_one_or_none()
