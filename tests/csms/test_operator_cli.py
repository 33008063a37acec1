"""``qrcharge operator add|list`` on the configured database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import qrcharge_cli
from csms.operators import accounts
from csms.store.db import Database

PASSWORD = "first-admin-password"


def _signs_in(url: str, name: str, password: str) -> str:
    async def check() -> str:
        db = Database.connect(url)
        try:
            async with db.session() as session:
                row = await accounts.authenticate(session, name=name, password=password)
                return row.role
        finally:
            await db.dispose()

    return asyncio.run(check())


def test_add_from_a_file_then_list(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    where = ["--database-url", db_url]
    args = ["operator", "add", "Root", "--role", "admin", "--password-file", str(secret)]
    assert qrcharge_cli.main([*args, *where]) == 0
    assert "added root (admin)" in capsys.readouterr().out
    assert _signs_in(db_url, "root", PASSWORD) == "admin"
    assert qrcharge_cli.main([*args, *where]) == 1  # the name is taken
    assert "exists" in capsys.readouterr().err
    assert qrcharge_cli.main(["operator", "list", *where]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("root\tadmin\tenabled\t")


def test_add_asks_twice_and_refuses_what_cannot_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--data-dir", str(tmp_path)]
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert qrcharge_cli.main(["operator", "add", "ops", "--role", "operator", *where]) == 2
    assert "differ" in capsys.readouterr().err
    answers = iter(["short", "short"])
    assert qrcharge_cli.main(["operator", "add", "ops", "--role", "operator", *where]) == 2
    assert "at least 12" in capsys.readouterr().err
    assert qrcharge_cli.main(["operator", "add", "no spaces", "--role", "viewer", *where]) == 2
    answers = iter([PASSWORD, PASSWORD])
    assert qrcharge_cli.main(["operator", "add", "ops", "--role", "operator", *where]) == 0
    url = f"sqlite+aiosqlite:///{tmp_path / 'qrcharge.db'}"
    assert _signs_in(url, "ops", PASSWORD) == "operator"
