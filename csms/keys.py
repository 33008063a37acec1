"""The CSMS signing keys: generated on first start, published, rotated with overlap.

Each key is a 0600 PEM file ``<kid>.pem`` in the key directory; ``manifest.json`` beside them
records when each key starts signing (``active_from``). Timeline of a rotation at ``t``::

    new key:  published from t ---- signs from t + key_prepublish_s ---------------->
    old key:  signs until t + key_prepublish_s -- published until that + token lifetime

So a charger that was offline for up to ``key_prepublish_s`` already holds the new key when it
first sees a token signed by it, and a token signed by the old key still verifies until it
expires (lifetime = ``start_token_validity_s`` + ``token_leeway_s``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from csms.errors import KeyManagerError
from qr_extension.keys import KeyRing, SigningKey, generate_key, load_private_key, save_private_key
from qr_extension.trust import sign_trusted_keys

MANIFEST = "manifest.json"
LOCK_FILE = ".lock"


@dataclass(frozen=True, slots=True)
class ManagedKey:
    """One signing key and the epoch second from which it signs."""

    key: SigningKey
    active_from: int


class KeyManager:
    """Owns the key directory; every query takes ``now`` (epoch seconds) explicitly."""

    def __init__(
        self, key_dir: Path, *, prepublish_s: int, token_lifetime_s: int, keys: list[ManagedKey]
    ) -> None:
        self._dir = key_dir
        self._prepublish_s = prepublish_s
        self._lifetime_s = token_lifetime_s
        self._keys = sorted(keys, key=lambda k: (k.active_from, k.key.kid))

    @classmethod
    def open(
        cls, key_dir: Path, *, now: int, prepublish_s: int, token_lifetime_s: int
    ) -> KeyManager:
        """Loads the keys of ``key_dir``, creating the first one (active at once) if none.

        Blocking file I/O: call it from a thread when a loop is running.
        """
        key_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(key_dir, 0o700)
        entries = _read_keys(key_dir)
        if not entries:
            entries = _create_first(key_dir, now)
        return cls(
            key_dir, prepublish_s=prepublish_s, token_lifetime_s=token_lifetime_s, keys=entries
        )

    def reload(self) -> None:
        """Reads the key directory again: another CSMS node on the same directory rotated.

        Blocking file I/O: call it from a thread when a loop is running."""
        entries = _read_keys(self._dir)
        if entries:
            self._keys = sorted(entries, key=lambda k: (k.active_from, k.key.kid))

    def _add(self, key: SigningKey, *, active_from: int) -> ManagedKey:
        """Adds a key to the directory under its lock, on top of what the manifest lists
        now (another process on the directory may have added one meanwhile)."""
        save_private_key(key, self._dir / f"{key.kid}.pem")
        entry = ManagedKey(key, active_from)
        with _locked(self._dir):
            current = _read_keys(self._dir)
            known = {k.key.kid for k in current}
            mine = [k for k in self._keys if k.key.kid not in known]
            self._keys = sorted([*current, *mine, entry], key=lambda k: (k.active_from, k.key.kid))
            _write_manifest(self._dir, self._keys, replace=True)
        return entry

    @property
    def keys(self) -> tuple[ManagedKey, ...]:
        return tuple(self._keys)

    def active_signing_key(self, now: int) -> SigningKey:
        """The newest key whose ``active_from`` has come."""
        active = [k for k in self._keys if k.active_from <= now]
        if not active:
            raise KeyManagerError("no key is active yet")
        return active[-1].key

    def _signs_until(self, index: int) -> int | None:
        later = self._keys[index + 1 :]
        return later[0].active_from if later else None

    def published_ring(self, now: int) -> KeyRing:
        """Pending keys, the active key, and retired keys whose tokens may still be valid."""
        published = []
        for i, entry in enumerate(self._keys):
            until = self._signs_until(i)
            if until is None or until + self._lifetime_s > now:
                published.append(entry.key.public)
        return KeyRing.of(published)

    def trusted_keys_token(self, now: int) -> str:
        """The published ring as a compact JWS signed by the active key: what chargers are
        sent as ``TrustedKeys``, so that they accept start tokens of every published key."""
        return sign_trusted_keys(
            self.published_ring(now), self.active_signing_key(now), issued_at=now
        )

    def rotate(self, now: int) -> ManagedKey:
        """Adds a key that is published now and signs from ``now + prepublish_s``.

        Blocking file I/O: call it from a thread when a loop is running.
        """
        return self._add(generate_key(), active_from=now + self._prepublish_s)


def _read_keys(key_dir: Path) -> list[ManagedKey]:
    """The keys the manifest of ``key_dir`` lists (none when it has no manifest yet)."""
    manifest = key_dir / MANIFEST
    entries: list[ManagedKey] = []
    if manifest.exists():
        try:
            rows = json.loads(manifest.read_text())["keys"]
            for row in rows:
                key = load_private_key(key_dir / f"{row['kid']}.pem")
                entries.append(ManagedKey(key, int(row["active_from"])))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise KeyManagerError(f"unusable key manifest {manifest}: {exc}") from exc
    return entries


def _create_first(key_dir: Path, now: int) -> list[ManagedKey]:
    """The directory's first key, active from ``now``; race-free: the manifest is linked into
    place, which fails when another process (several workers starting on an empty data dir)
    linked its own first. The loser drops its key and uses the winner's."""
    key = generate_key()
    pem = key_dir / f"{key.kid}.pem"
    save_private_key(key, pem)
    entry = ManagedKey(key, now)
    if _write_manifest(key_dir, [entry], replace=False):
        return [entry]
    pem.unlink(missing_ok=True)
    return _read_keys(key_dir)


def _write_manifest(key_dir: Path, keys: list[ManagedKey], *, replace: bool) -> bool:
    """Writes the manifest atomically (a unique temporary file, fsynced, then renamed into
    place; or linked, when ``replace`` is False, which leaves an existing manifest alone and
    returns False)."""
    rows = [{"kid": k.key.kid, "active_from": k.active_from} for k in keys]
    path = key_dir / MANIFEST
    tmp = key_dir / f".{MANIFEST}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, json.dumps({"keys": rows}, indent=1).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(key_dir: Path) -> Iterator[None]:
    """An exclusive lock on the key directory (``.lock``, flock) while a key is added."""
    fd = os.open(key_dir / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
