"""Which node holds each charger's connection: ``{prefix}:presence:{charger id}`` = node id.

A node claims a charger when its connection opens (``SET ... EX ttl GET``: the previous holder
comes back, so the caller can tell that node to close its older connection), keeps the claims
of its connections alive (every third of the TTL, and only where the key still names it), and
deletes a claim when the connection ends only if the key still names it (a newer connection on
another node must not lose its claim to the older one's goodbye). A node that dies stops
refreshing: its chargers' keys expire and they read as offline within ``ttl_s``.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

REFRESH_BATCH = 500  # keys per refresh script

# deletes the claim only if it is still ours
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# for each key: ours -> expiry renewed; missing (Redis restarted, or expired during a pause)
# -> claimed again; another node's -> left alone and reported, its connection is the newer
_REFRESH = """
local lost = {}
for i, key in ipairs(KEYS) do
    local holder = redis.call('GET', key)
    if holder == ARGV[1] then
        redis.call('PEXPIRE', key, ARGV[2])
    elseif not holder then
        redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    else
        table.insert(lost, i)
    end
end
return lost
"""


class Presence:
    """The presence keys of one cluster (``prefix``), seen from node ``node_id``."""

    def __init__(self, redis: Redis, *, prefix: str, node_id: str, ttl_s: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self.node_id = node_id
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._release = redis.register_script(_RELEASE)
        self._refresh = redis.register_script(_REFRESH)

    def key(self, charger_id: str) -> str:
        return f"{self._prefix}:presence:{charger_id}"

    async def claim(self, charger_id: str) -> str | None:
        """Marks the charger held here; the node that held it before, if another."""
        previous = await self._redis.set(
            self.key(charger_id), self.node_id, px=self._ttl_ms, get=True
        )
        holder = _text(previous) if isinstance(previous, bytes | str) else None
        return holder if holder != self.node_id else None

    async def release(self, charger_id: str) -> bool:
        """Forgets the claim if it is still this node's; whether it was."""
        return bool(await self._release(keys=[self.key(charger_id)], args=[self.node_id]))

    async def refresh(self, charger_ids: list[str]) -> list[str]:
        """Renews this node's claims; the chargers another node claimed meanwhile."""
        lost: list[str] = []
        for start in range(0, len(charger_ids), REFRESH_BATCH):  # short scripts: Redis is shared
            batch = charger_ids[start : start + REFRESH_BATCH]
            keys = [self.key(c) for c in batch]
            gone = await self._refresh(keys=keys, args=[self.node_id, self._ttl_ms])
            lost += [batch[int(i) - 1] for i in gone]
        return lost

    async def holder(self, charger_id: str) -> str | None:
        """The node holding the charger's connection, or None (offline everywhere)."""
        return _text(await self._redis.get(self.key(charger_id)))

    async def holders(self, charger_ids: Iterable[str]) -> dict[str, str]:
        """charger id -> node, for those of ``charger_ids`` connected anywhere."""
        ids = list(charger_ids)
        if not ids:
            return {}
        values = await self._redis.mget([self.key(c) for c in ids])
        return {c: h for c, v in zip(ids, values, strict=True) if (h := _text(v)) is not None}

    async def everyone(self) -> list[str]:
        """Every charger connected anywhere in the cluster."""
        head = len(self.key(""))
        found = [
            _text(k) or "" async for k in self._redis.scan_iter(match=self.key("*"), count=1000)
        ]
        return [k[head:] for k in found]


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value
