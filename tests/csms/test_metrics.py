"""Prometheus metrics: guarded by the admin key (or a listener of their own), and the
counters and gauges move with what the CSMS does."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import httpx
import websockets
from ocpp.v16 import call as call16
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus

from csms.api.routes.metrics import refresh_stored

from .clients import Client16, connect
from .conftest import LiveCsms, basic_auth, make_settings, serve


def _values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _scrape(csms: LiveCsms) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await csms.http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return _values(r.text)


def _get(values: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_need_the_admin_key(csms: LiveCsms) -> None:
    assert (
        await csms.http.get("/metrics", headers={"Authorization": "Bearer no"})
    ).status_code == 401


async def test_counters_and_gauges_move(csms: LiveCsms) -> None:
    await csms.add_charger("M1")
    before = await _scrape(csms)
    async with connect(csms.ws_url("M1"), Client16, "ocpp1.6", basic_auth("M1")) as cp:
        await cp.call(call16.BootNotification(charge_point_vendor="V", charge_point_model="M"))
        await cp.call(call16.Heartbeat())
        await cp._connection.send('[2,"bad","Heartbeat",{"unexpected":1}]')  # a CALLERROR
        await cp.call(call16.Heartbeat())
        during = await _scrape(csms)
    with contextlib.suppress(InvalidStatus):
        await websockets.connect(
            csms.ws_url("M1"), subprotocols=["ocpp1.6"], additional_headers=basic_auth("M1", "no")
        )
    driver = await csms.driver()
    r = await csms.http.post("/api/v1/me/wallet/top-ups", json={"amount": 1000}, headers=driver)
    assert r.status_code == 201, r.text
    r = await csms.http.post(
        "/api/v1/orders", json={"charger_id": "M1", "amount": 500}, headers=driver
    )
    assert r.status_code == 201, r.text
    await refresh_stored(csms.ctx)
    after = await _scrape(csms)

    def grew(name: str, by: float = 1, **labels: str) -> bool:
        return _get(after, name, **labels) - _get(before, name, **labels) >= by

    assert grew("qrcharge_ocpp_calls_received_total", 2, action="Heartbeat", outcome="result")
    assert grew("qrcharge_ocpp_calls_received_total", action="BootNotification", outcome="result")
    refused = {
        dict(labels)["outcome"]
        for (name, labels), value in after.items()
        if name == "qrcharge_ocpp_calls_received_total"
        and dict(labels)["action"] == "Heartbeat"
        and dict(labels)["outcome"] != "result"
        and value > _get(before, name, **dict(labels))
    }
    assert len(refused) == 1  # the bad Heartbeat, under its CALLERROR code
    (code,) = refused
    assert grew("qrcharge_ocpp_callerrors_sent_total", code=code)
    assert grew("qrcharge_ocpp_call_seconds_count", 3, action="Heartbeat")
    assert grew("qrcharge_ocpp_handshakes_refused_total", reason="authentication")
    assert _get(during, "qrcharge_chargers_connected", ocpp="1.6") == 1
    assert _get(after, "qrcharge_chargers_connected", ocpp="1.6") == 0
    assert _get(after, "qrcharge_orders", state="created") >= 1
    assert _get(after, "qrcharge_holds_outstanding_minor_units") >= 500
    assert grew("qrcharge_store_commit_seconds_count")
    assert _get(after, "process_cpu_seconds_total") > 0  # the client library's collectors


async def test_a_listener_of_its_own(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with serve(make_settings(tmp_path, metrics_bind=f"127.0.0.1:{port}")):
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200 and "qrcharge_ocpp_calls_received_total" in r.text
