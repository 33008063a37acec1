"""The node's one Redis client: a bounded pool whose callers wait their turn.

redis-py's default asyncio pool opens up to ``max_connections`` sockets and then *fails* the
next command with ``Too many connections``. A reconnect burst asks Redis for presence claims,
password checks and throttle counts for thousands of chargers at once, so a node hit that
ceiling and degraded on its own (claims left to the refresher, the password throttle counted
in the process only). A :class:`~redis.asyncio.BlockingConnectionPool` makes a command past the
bound wait for a connection instead, up to ``wait_s``, and only then fail (the callers' usual
"Redis unreachable" path). The bound also caps the sockets every node keeps open on the shared
Redis.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

CONNECT_TIMEOUT_S = 2.0  # a Redis that does not answer: the command fails (503), never hangs
SOCKET_TIMEOUT_S = 5.0


def redis_client(url: str, *, max_connections: int, wait_s: float) -> Redis:
    """A client on ``url`` with at most ``max_connections`` sockets; a command that finds
    them all busy waits up to ``wait_s`` for one (then raises ``ConnectionError``)."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_s,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes both
