"""The settings model: defaults, user file, environment and flags, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from config import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "QRCHARGE_CONFIG",
        "QRCHARGE_PORT",
        "QRCHARGE_ISSUER",
        "QRCHARGE_DATA_DIR",
        "QRCHARGE_ADMIN_API_KEY",
        "QRCHARGE_ENVIRONMENT",
        "QRCHARGE_DATABASE_URL",
        "QRCHARGE_KEY_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_come_from_default_toml() -> None:
    s = load_settings()
    assert s.issuer == "qrcharge"
    assert s.start_token_validity_s == 900
    assert s.token_leeway_s == 300
    assert s.key_dir is None
    assert s.resolved_key_dir == s.data_dir / "keys"
    assert s.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert s.resolved_database_url.endswith("qrcharge.db")


def test_user_file_overrides_defaults(tmp_path: Path) -> None:
    user = tmp_path / "site.toml"
    user.write_text('issuer = "acme"\nport = 9001\nkey_dir = "/srv/keys"\n')
    s = load_settings(user)
    assert (s.issuer, s.port, s.resolved_key_dir) == ("acme", 9001, Path("/srv/keys"))


def test_environment_overrides_user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "site.toml"
    user.write_text("port = 9001\n")
    monkeypatch.setenv("QRCHARGE_CONFIG", str(user))
    monkeypatch.setenv("QRCHARGE_PORT", "9002")
    assert load_settings().port == 9002


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QRCHARGE_PORT", "9002")
    assert load_settings(port=9003).port == 9003
    assert load_settings(port=None).port == 9002  # an absent flag keeps the configured value


def test_database_url_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    monkeypatch.setenv("QRCHARGE_DATABASE_URL", url)
    assert load_settings().resolved_database_url == url


def test_production_refuses_default_admin_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QRCHARGE_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="admin_api_key"):
        load_settings()
    monkeypatch.setenv("QRCHARGE_ADMIN_API_KEY", "a-real-secret")
    assert load_settings().admin_api_key == "a-real-secret"


def test_bad_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QRCHARGE_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        load_settings()


def test_the_sweeper_waits_longer_than_a_provider_call() -> None:
    with pytest.raises(ValidationError, match="psp_sweep_after_s"):
        load_settings(psp_timeout_s=30, psp_sweep_after_s=30)
    assert load_settings(psp_timeout_s=5, psp_sweep_after_s=6).psp_sweep_after_s == 6
