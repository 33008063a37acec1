"""Structured logs of a whole demo run: every line is JSON, OCPP and money lines say which
charger, order and transaction they are about, HTTP lines which request, and no secret
(password, access token, start token, key) appears anywhere in the log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def demo_run(tmp_path: Path) -> Iterator[tuple[dict[str, Any], Path, Path]]:
    info_file, log_file, data = tmp_path / "info.json", tmp_path / "demo.log", tmp_path / "data"
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "qrcharge_cli", "demo", "--port", "0", "--chargers", "2",
             "--data-dir", str(data), "--info-file", str(info_file),
             "--log-level", "info", "--log-format", "json", "--time-scale", "60"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "QRCHARGE_CP_METER_INTERVAL_S": "1"},
        )  # fmt: skip
        try:
            _until(lambda: info_file.exists() and info_file.read_text(), 60)
            yield json.loads(info_file.read_text()), log_file, data
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


def _secrets_on_disk(data: Path) -> list[str]:
    """Private key material and secrets the CSMS and the chargers generated into ``data``."""
    found = []
    for path in data.rglob("*"):
        if not path.is_file() or path.suffix in (".db", ".db-wal", ".db-shm", ".png", ".port"):
            continue
        text = path.read_text(errors="ignore")
        if path.suffix == ".json" or text.lstrip().startswith("{"):
            try:
                jwk = json.loads(text)
            except ValueError:
                continue
            keys = jwk.get("keys", [jwk]) if isinstance(jwk, dict) else []
            found += [k["d"] for k in keys if isinstance(k, dict) and "d" in k]
        elif "PRIVATE KEY" in text:
            found += [line for line in text.splitlines() if len(line) > 40]
        elif path.name.endswith(".secret"):
            found.append(text.strip())
    return found


def test_a_demo_run_logs_json_with_context_and_no_secret(
    demo_run: tuple[dict[str, Any], Path, Path],
) -> None:
    info, log_file, data = demo_run
    http = httpx.Client(base_url=info["base_url"], timeout=20)
    login = {"username": info["driver_email"], "password": info["driver_password"]}
    access = http.post("/api/v1/token", data=login).json()["access_token"]
    driver = {"Authorization": f"Bearer {access}", "X-Request-ID": "order-req-1"}
    charger = info["chargers"][0]
    order = http.post(
        "/api/v1/orders", json={"charger_id": charger["id"], "evse_id": 1, "energy_wh": 300},
        headers=driver,
    )  # fmt: skip
    assert order.status_code == 201, order.text
    assert order.headers["x-request-id"] == "order-req-1"
    order_id, start_token = order.json()["id"], order.json()["start_token"]
    control = httpx.Client(base_url=charger["control_url"], timeout=20)
    control.post("/evses/1/plug", json={"capacity_wh": 60_000, "soc": 0.2})
    png = http.get(f"/api/v1/orders/{order_id}/qr.png", headers=driver).content
    assert control.post("/camera", content=png).json()["accepted"] is True
    _until(lambda: control.get("/state").json()["evses"][0]["register_wh"] >= 300)
    control.post("/evses/1/unplug")
    settlement = _until(lambda: (d := control.get("/display").json())["qr_kind"] == "settlement"
                        and d["qr_text"])  # fmt: skip
    paid = http.post("/api/v1/settlements", json={"token": settlement}, headers=driver)
    assert paid.status_code == 200, paid.text
    receipt = http.post(f"/api/v1/payments/{paid.json()['payment_id']}/confirm", headers=driver)
    assert receipt.status_code == 200, receipt.text
    time.sleep(1.5)  # the charger's queue reaches the CSMS: transaction lines to look at

    text = log_file.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines and all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    ocpp = [line for line in lines if line["logger"].startswith(("csms.endpoint", "csms.protocol"))]
    assert ocpp and all(line.get("charger_id") for line in ocpp)
    placed = [line for line in lines if line["msg"].startswith("order placed")]
    assert placed and placed[0]["order_id"] == order_id
    assert placed[0]["request_id"] == "order-req-1" and placed[0]["charger_id"] == charger["id"]
    settled = [line for line in lines if line["msg"].startswith("settlement from")]
    assert settled and all(line["order_id"] == order_id and line.get("txn") for line in settled)

    secrets = {
        "admin key": info["admin_api_key"],
        "driver password": info["driver_password"],
        "access token": access,
        "start token": start_token,
        **{f"secret {i}": s for i, s in enumerate(_secrets_on_disk(data))},
    }
    assert len(secrets) > 5  # the key files were found
    leaked = [name for name, value in secrets.items() if value and value in text]
    assert leaked == []
