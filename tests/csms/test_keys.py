"""KeyManager: first key, pre-publication, overlap after rotation, files and reload."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from csms.keys import KeyManager

PRE, LIFE = 3600, 1200


def _open(path: Path, now: int) -> KeyManager:
    return KeyManager.open(path, now=now, prepublish_s=PRE, token_lifetime_s=LIFE)


def test_first_start_creates_one_active_key_with_private_files(tmp_path: Path) -> None:
    km = _open(tmp_path / "keys", 1000)
    key = km.active_signing_key(1000)
    assert [k.kid for k in km.published_ring(1000)] == [key.kid]
    pem = tmp_path / "keys" / f"{key.kid}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    again = _open(tmp_path / "keys", 5000)
    assert again.active_signing_key(5000).kid == key.kid  # reloaded, not regenerated


def test_rotation_prepublishes_then_retires_after_token_lifetime(tmp_path: Path) -> None:
    km = _open(tmp_path, 0)
    old = km.active_signing_key(0).kid
    new = km.rotate(100).key.kid
    assert km.active_signing_key(100).kid == old
    assert {k.kid for k in km.published_ring(100)} == {old, new}
    switch = 100 + PRE
    assert km.active_signing_key(switch - 1).kid == old
    assert km.active_signing_key(switch).kid == new
    assert {k.kid for k in km.published_ring(switch + LIFE - 1)} == {old, new}
    assert {k.kid for k in km.published_ring(switch + LIFE)} == {new}
    reloaded = _open(tmp_path, switch)
    assert reloaded.active_signing_key(switch).kid == new
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [row["kid"] for row in manifest["keys"]] == [old, new]
