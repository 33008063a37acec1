"""Files that hold secrets are created owner-only, in owner-only directories we create."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from charge_point.store import Store
from config.private import private_dir, private_file
from csms.store.db import Database, migrate


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_and_its_new_directories_are_owner_only(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir(mode=0o755)
    (tmp_path / "shared").chmod(0o755)
    target = tmp_path / "shared" / "a" / "b" / "secret.db"
    private_file(target)
    assert _mode(target) == 0o600
    assert _mode(target.parent) == 0o700 and _mode(target.parent.parent) == 0o700
    assert _mode(tmp_path / "shared") == 0o755  # a directory we did not make is left alone


def test_an_existing_file_open_to_others_is_tightened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "old.db"
    target.write_text("rows")
    target.chmod(0o644)
    private_file(target)
    assert _mode(target) == 0o600 and target.read_text() == "rows"
    assert "made owner-only" in caplog.text
    assert private_dir(tmp_path / "new") == tmp_path / "new"


async def test_the_csms_database_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "qrcharge.db"
    db = Database.connect(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(db.engine)
    finally:
        await db.dispose()
    assert _mode(path.parent) == 0o700
    for name in ("qrcharge.db", "qrcharge.db-wal", "qrcharge.db-shm"):
        if (path.parent / name).exists():
            assert _mode(path.parent / name) == 0o600, name


def test_the_charger_state_is_owner_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "state" / "charger.db")
    store.put("k", 1)
    store.close()
    assert _mode(tmp_path / "state") == 0o700
    assert _mode(tmp_path / "state" / "charger.db") == 0o600
    wal = tmp_path / "state" / "charger.db-wal"
    assert not wal.exists() or _mode(wal) == 0o600
