"""Crash safety: a real ``qrcharge cp`` process killed with SIGKILL in the middle of a
transaction, restarted on the same state directory. Nothing may be lost or sent twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from qr_extension.keys import PublicKey
from qr_extension.qr import render_png
from qr_extension.refusal import Refusal
from qr_extension.settlement import verify_settlement
from tests.charge_point.central import Central, until
from tests.charge_point.conftest import CP_ID, TokenFactory

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def qrcharge_cp(*args: str) -> subprocess.Popen[bytes]:
    """``qrcharge cp ARGS`` as a real process (fast reconnects, a meter sample every second:
    ``--time-scale`` speeds up the energy, not the sample interval)."""
    env = {
        **os.environ,
        "QRCHARGE_CP_RECONNECT_MIN_S": "0.1",
        "QRCHARGE_CP_METER_INTERVAL_S": "1",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "qrcharge_cli", "cp", *args, "--log-level", "WARNING"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def start_charger(
    central: Central, version: str, state: Path, jwks: Path
) -> subprocess.Popen[bytes]:
    (state / "control.port").unlink(missing_ok=True)
    return qrcharge_cp(
        "--id",
        CP_ID,
        "--csms",
        central.url,
        "--ocpp",
        version,
        "--state-dir",
        str(state),
        "--control-port",
        "0",
        "--time-scale",
        "60",
        "--trusted-keys",
        str(jwks),
        "--quiet-terminal",
    )


async def control_client(state: Path, proc: subprocess.Popen[bytes]) -> httpx.AsyncClient:
    port_file = state / "control.port"
    await until(lambda: port_file.exists() or proc.poll() is not None, 20, "control port")
    assert proc.poll() is None, "charger process died"
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_file.read_text()}", timeout=10)


def data_transfers(central: Central, message_id: str) -> list[Any]:
    return [d for d in central.of("DataTransfer") if d["message_id"] == message_id]


async def get_state(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/state")).json()


@pytest.mark.parametrize("offline", [False, True], ids=["online", "offline"])
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_sigkill_mid_transaction(
    tmp_path: Path,
    central: Central,
    jwks_file: Path,
    token: TokenFactory,
    version: str,
    offline: bool,
) -> None:
    state = tmp_path / "state"
    proc = start_charger(central, version, state, jwks_file)
    try:
        client = await control_client(state, proc)
        await until(lambda: central.of("BootNotification"), 20, "boot")
        await until(
            lambda: [d for d in central.of("DataTransfer") if d["message_id"] == "Synced"],
            10,
            "synced",
        )
        if offline:
            await client.post("/link/down")
        await client.post("/evses/1/plug", json={"capacity_wh": 60000, "soc": 0.3})
        now = (await get_state(client))["now"]
        qr = render_png(token("CRASH1", now, amount=50_000))
        assert (await client.post("/camera", content=qr)).json()["accepted"]

        # wait for energy and for at least two durable meter samples (queued while offline,
        # delivered while online): the process is then killed mid-transaction
        updates = "MeterValues" if version == "1.6" else "TransactionEvent"
        for _ in range(400):
            state_now = await get_state(client)
            energy = state_now["transactions"][0]["energy_wh"]
            samples = (
                state_now["queue_length"] - 1
                if offline
                else len(central.of(updates)) - (version != "1.6")
            )
            if energy > 500 and samples >= 2:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no durable meter samples")
        if not offline:
            started = "StartTransaction" if version == "1.6" else "TransactionEvent"
            await until(lambda: central.of(started), 10, "start delivered")
        await client.aclose()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        proc = start_charger(central, version, state, jwks_file)  # power is back
        client = await control_client(state, proc)
        await until(lambda: data_transfers(central, "Settlement"), 20, "settlement")
        await until(lambda: central.of("DataTransfer")[-1]["message_id"] == "Synced", 10, "synced")
        after = await get_state(client)
        assert after["queue_length"] == 0 and not after["transactions"]

        transfers = central.of("DataTransfer")
        keys = {
            PublicKey.from_jwk(json.loads(d["data"])).kid
            for d in transfers
            if d["message_id"] == "SettlementKey"
        }
        assert len(keys) == 1  # the same key after the restart: generated once
        (token_text,) = [d["data"] for d in transfers if d["message_id"] == "Settlement"]
        settlement = verify_settlement(
            token_text,
            key=PublicKey.from_jwk(
                json.loads(next(d["data"] for d in transfers if d["message_id"] == "SettlementKey"))
            ),
            audience="qrcharge",
        )
        assert not isinstance(settlement, Refusal)
        assert settlement.reason == "PowerLoss" and settlement.order_id == "CRASH1"
        assert settlement.energy_wh > 0 and settlement.offline is offline
        if version == "1.6":
            assert len(central.of("StartTransaction")) == 1
            (stop,) = central.of("StopTransaction")
            assert stop["reason"] == "PowerLoss"
            assert stop["transaction_id"] == next(iter(central.started.values()))
            assert stop["meter_stop"] == settlement.meter_stop_wh
            readings = [
                int(mv["meter_value"][0]["sampled_value"][0]["value"])
                for mv in central.of("MeterValues")
            ]
            assert readings == sorted(readings) and readings[-1] <= stop["meter_stop"]
        else:
            # a message delivered just before the kill, its answer lost, is sent again after
            # the restart (at least once; the CSMS keeps it once by seqNo): the repeat must be
            # the same event, and the seqNos have no gap
            by_seq: dict[int, dict[str, object]] = {}
            for event in central.of("TransactionEvent"):
                assert by_seq.setdefault(event["seq_no"], event) == event, event["seq_no"]
            assert sorted(by_seq) == list(range(len(by_seq)))
            events = [by_seq[n] for n in sorted(by_seq)]
            assert [e["event_type"] for e in events].count("Started") == 1
            assert events[-1]["event_type"] == "Ended"
            assert events[-1]["transaction_info"]["stopped_reason"] == "PowerLoss"
        # the order id stays used across the crash
        await client.post("/evses/1/plug")
        answer = (await client.post("/camera", content=qr)).json()
        assert answer["reason"] == "replayed"
        await client.aclose()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)


async def test_fleet_runs_several_chargers(tmp_path: Path, central: Central) -> None:
    proc = qrcharge_cp(
        "--id",
        "FLEET",
        "--csms",
        central.url,
        "--ocpp",
        "2.0.1",
        "--state-dir",
        str(tmp_path),
        "--fleet",
        "3",
    )
    started = time.monotonic()
    try:
        await until(lambda: len(central.of("BootNotification")) == 3, 20, "three boots")
        assert {m.charger for m in central.messages} == {"FLEET-001", "FLEET-002", "FLEET-003"}
        assert time.monotonic() - started < 20
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
