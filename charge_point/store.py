"""Everything the charger must not forget in a power loss, in one SQLite file.

``synchronous=FULL`` with WAL: a commit returns only after the data is on disk, so whatever a
method here has returned survives SIGKILL or a power cut. Methods that change several things
(start a transaction and mark its order id used and queue its StartTransaction) do so in one
SQLite transaction, so a crash leaves either all of it or none.

Tables: ``state`` (small JSON values: time floor, counters, trusted JWKS, EVSE registers),
``config`` (OCPP configuration set by the CSMS), ``used_tokens``, ``revoked_tokens`` (order
ids whose start token the CSMS revoked: the order was cancelled), ``transactions`` (running
sessions with their last meter reading), ``txn_ids`` (local transaction serial -> id the CSMS
gave, for the 1.6 rewrite), ``queue`` (outbound transaction messages, in order),
``local_list`` and ``auth_cache``. The charger's private key is not here but in a 0600 PEM
file next to it (:func:`load_charger_key`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charge_point.errors import StoreError
from config.private import private_file
from qr_extension.keys import SigningKey, load_or_create_key

DB_NAME = "charger.sqlite3"
KEY_NAME = "charger_key.pem"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS used_tokens (order_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS revoked_tokens (
    order_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    local_id TEXT PRIMARY KEY, evse_id INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS txn_ids (local_id TEXT PRIMARY KEY, csms_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, txn TEXT,
    payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS local_list (
    id_tag TEXT PRIMARY KEY, status TEXT NOT NULL, expiry REAL);
CREATE TABLE IF NOT EXISTS auth_cache (
    id_tag TEXT PRIMARY KEY, status TEXT NOT NULL, expiry REAL);
"""


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One outbound message waiting for the CSMS, in ``seq`` order."""

    seq: int
    kind: str
    txn: str | None
    payload: dict[str, Any]
    attempts: int
    not_before: float


def load_charger_key(state_dir: Path) -> SigningKey:
    """The charger's own P-256 key: generated once, kept in a 0600 file, never exported."""
    return load_or_create_key(state_dir / KEY_NAME)


class Store:
    """The charger's SQLite file. One instance per charger, used from one thread."""

    def __init__(self, path: Path) -> None:
        try:
            private_file(path)  # used order ids, the local list, the queue: owner only
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        self._depth = 0

    @classmethod
    def in_dir(cls, state_dir: Path) -> Store:
        return cls(state_dir / DB_NAME)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Groups writes into one durable commit (nested uses join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"{exc} in {sql.split()[0]}") from exc

    # --- small values -------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        row = self._exec("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        self._exec(
            "INSERT INTO state(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def next_counter(self, key: str) -> int:
        """Increments and returns a durable counter (transaction serial, settlement seq)."""
        with self.atomic():
            value = int(self.get(key, 0)) + 1
            self.put(key, value)
        return value

    # --- OCPP configuration ---------------------------------------------------------------
    def config_values(self) -> dict[str, Any]:
        rows = self._exec("SELECT key, value FROM config").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def set_config(self, key: str, value: Any) -> None:
        self._exec(
            "INSERT INTO config(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    # --- used order ids -----------------------------------------------------------------------
    def is_used(self, order_id: str) -> bool:
        row = self._exec("SELECT 1 FROM used_tokens WHERE order_id = ?", (order_id,)).fetchone()
        return row is not None

    def mark_used(self, order_id: str, expires_at: int) -> None:
        self._exec(
            "INSERT OR IGNORE INTO used_tokens(order_id, expires_at) VALUES(?, ?)",
            (order_id, expires_at),
        )

    def prune_used(self, floor: float, leeway_s: int) -> int:
        """Forgets order ids whose token cannot verify any more at or after ``floor``."""
        cur = self._exec("DELETE FROM used_tokens WHERE expires_at + ? < ?", (leeway_s, floor))
        return cur.rowcount

    # --- revoked order ids ---------------------------------------------------------------
    def is_revoked(self, order_id: str) -> bool:
        row = self._exec("SELECT 1 FROM revoked_tokens WHERE order_id = ?", (order_id,)).fetchone()
        return row is not None

    def revoke(self, order_id: str, expires_at: int) -> None:
        """Records the revocation (durable when this returns, outside :meth:`atomic`); a
        repeat keeps the later expiry."""
        self._exec(
            "INSERT INTO revoked_tokens(order_id, expires_at) VALUES(?, ?) "
            "ON CONFLICT(order_id) DO UPDATE SET "
            "expires_at = MAX(expires_at, excluded.expires_at)",
            (order_id, expires_at),
        )

    def prune_revoked(self, floor: float, leeway_s: int) -> int:
        """Forgets revocations of tokens that cannot verify any more at or after ``floor``."""
        cur = self._exec("DELETE FROM revoked_tokens WHERE expires_at + ? < ?", (leeway_s, floor))
        return cur.rowcount

    # --- running transactions -----------------------------------------------------------
    def save_transaction(self, local_id: str, evse_id: int, data: dict[str, Any]) -> None:
        self._exec(
            "INSERT INTO transactions(local_id, evse_id, data) VALUES(?, ?, ?) "
            "ON CONFLICT(local_id) DO UPDATE SET data = excluded.data",
            (local_id, evse_id, json.dumps(data)),
        )

    def delete_transaction(self, local_id: str) -> None:
        self._exec("DELETE FROM transactions WHERE local_id = ?", (local_id,))

    def running_transactions(self) -> list[dict[str, Any]]:
        rows = self._exec("SELECT data FROM transactions ORDER BY evse_id").fetchall()
        return [json.loads(r[0]) for r in rows]

    # --- 1.6 transaction ids --------------------------------------------------------------
    def set_csms_id(self, local_id: str, csms_id: str) -> None:
        self._exec(
            "INSERT OR REPLACE INTO txn_ids(local_id, csms_id) VALUES(?, ?)", (local_id, csms_id)
        )

    def csms_id(self, local_id: str) -> str | None:
        row = self._exec("SELECT csms_id FROM txn_ids WHERE local_id = ?", (local_id,)).fetchone()
        return None if row is None else str(row[0])

    # --- outbound queue -----------------------------------------------------------------
    def enqueue(self, kind: str, payload: dict[str, Any], *, txn: str | None = None) -> int:
        cur = self._exec(
            "INSERT INTO queue(kind, txn, payload) VALUES(?, ?, ?)",
            (kind, txn, json.dumps(payload)),
        )
        return int(cur.lastrowid or 0)

    def queue_head(self) -> QueuedMessage | None:
        row = self._exec(
            "SELECT seq, kind, txn, payload, attempts, not_before FROM queue ORDER BY seq LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return QueuedMessage(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])

    def queue_items(self) -> list[QueuedMessage]:
        rows = self._exec(
            "SELECT seq, kind, txn, payload, attempts, not_before FROM queue ORDER BY seq"
        ).fetchall()
        return [QueuedMessage(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def queue_len(self) -> int:
        return int(self._exec("SELECT COUNT(*) FROM queue").fetchone()[0])

    def dequeue(self, seq: int) -> None:
        self._exec("DELETE FROM queue WHERE seq = ?", (seq,))

    def defer(self, seq: int, attempts: int, not_before: float) -> None:
        self._exec(
            "UPDATE queue SET attempts = ?, not_before = ? WHERE seq = ?",
            (attempts, not_before, seq),
        )

    # --- local authorisation ------------------------------------------------------------
    def local_list(self) -> dict[str, tuple[str, float | None]]:
        rows = self._exec("SELECT id_tag, status, expiry FROM local_list").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def replace_local_list(self, entries: dict[str, tuple[str, float | None]]) -> None:
        with self.atomic():
            self._exec("DELETE FROM local_list")
            self.update_local_list(entries, [])

    def update_local_list(
        self, entries: dict[str, tuple[str, float | None]], removed: list[str]
    ) -> None:
        with self.atomic():
            for tag in removed:
                self._exec("DELETE FROM local_list WHERE id_tag = ?", (tag,))
            for tag, (status, expiry) in entries.items():
                self._exec(
                    "INSERT OR REPLACE INTO local_list(id_tag, status, expiry) VALUES(?, ?, ?)",
                    (tag, status, expiry),
                )

    def cached(self, id_tag: str) -> tuple[str, float | None] | None:
        row = self._exec(
            "SELECT status, expiry FROM auth_cache WHERE id_tag = ?", (id_tag,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def cache(self, id_tag: str, status: str, expiry: float | None) -> None:
        self._exec(
            "INSERT OR REPLACE INTO auth_cache(id_tag, status, expiry) VALUES(?, ?, ?)",
            (id_tag, status, expiry),
        )

    def clear_cache(self) -> None:
        self._exec("DELETE FROM auth_cache")
