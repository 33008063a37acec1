"""Running in production: health checks a load balancer can poll, and settings that
``environment = "production"`` refuses, each named."""

from __future__ import annotations

from pathlib import Path

import pytest

from csms.api.routes import health
from csms.production import PLACEHOLDER_OPERATOR, production_problems
from qrcharge_cli import main

from .conftest import LiveCsms, make_settings, serve

GOOD_KEY = "k" * 32


async def test_liveness_and_readiness(csms: LiveCsms) -> None:
    assert (await csms.http.get("/healthz", headers={})).json()["status"] == "ok"
    ready = await csms.http.get("/readyz", headers={})
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "signing_key": "ok", "store_backlog": "ok"},
    }


async def test_not_ready_names_what_fails(csms: LiveCsms, monkeypatch: pytest.MonkeyPatch) -> None:
    def older(conn: object) -> None:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")  # type: ignore[attr-defined]

    await csms.ctx.db.reader.run(older)
    monkeypatch.setattr(health, "MAX_STORE_BACKLOG", -1)
    r = await csms.http.get("/readyz", headers={})
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["database"].startswith("at 0001, not 0") and checks["signing_key"] == "ok"
    assert checks["store_backlog"] == "0 waiting"


def test_production_names_every_unsafe_setting(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    settings = make_settings(data.parent, environment="production", admin_api_key="short-key")
    settings = settings.model_copy(update={"data_dir": data})
    problems = production_problems(settings)
    assert len(problems) == 5
    assert "admin_api_key has 9 characters, at least 32" in problems[0]
    assert "sandbox" in problems[1] and "sandbox_payments_not_real_money" in problems[1]
    assert "production needs TLS" in problems[2]
    assert "operator_name is the placeholder" in problems[3]
    assert f"data_dir {data} is readable by others" in problems[4]
    data.chmod(0o700)
    safe = settings.model_copy(
        update={
            "admin_api_key": GOOD_KEY,
            "sandbox_payments_not_real_money": True,
            "trusted_proxies": "10.0.0.2",  # a TLS-terminating proxy in front
            "operator_name": "Harbour Parking Charging Ltd.",  # the seller on receipts
        }
    )
    assert production_problems(safe) == []
    assert production_problems(make_settings(tmp_path, admin_api_key="x")) == []  # development
    assert make_settings(tmp_path).operator_name == PLACEHOLDER_OPERATOR  # the shipped default


def test_the_csms_command_refuses_to_start_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QRCHARGE_ENVIRONMENT", "production")
    monkeypatch.setenv("QRCHARGE_ADMIN_API_KEY", "only-twenty-chars-ok")
    code = main(["csms", "--data-dir", str(tmp_path / "data"), "--port", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("qrcharge csms: refusing to start in production: admin_api_key has 20")
    assert "sandbox" in err and "only-twenty-chars-ok" not in err


async def test_api_docs_can_be_turned_off(tmp_path: Path) -> None:
    async with serve(make_settings(tmp_path, api_docs=False)) as csms:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await csms.http.get(path)).status_code == 404
        assert (await csms.http.get("/healthz")).status_code == 200
