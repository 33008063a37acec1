"""Smoke tests of the OCPP load generator's own logic (not of the CSMS).

Payloads are checked against the official OCPP JSON schemas shipped with the ``ocpp`` library;
the client is run against an in-test server that answers some CALLs with CALLERRORs and calls
the charger itself; the whole script runs once in ``--self-test`` mode with 20 chargers.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import struct
import subprocess
import sys
import time
from collections import Counter, deque
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jsonschema
import ocpp
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from benchmarks.ocpp_load import charger_specs, paid_indices
from benchmarks.ocpp_load_client import (
    CallFailed,
    ChargerSpec,
    Link,
    Worker,
    WorkerPlan,
    must_deliver,
    settlement_key,
)
from benchmarks.ocpp_load_frames import (
    CYCLE,
    HEARTBEATS_ONLY,
    SUBPROTOCOLS,
    VERSION_OF_SUBPROTOCOL,
    ChargerScript,
    FrameError,
    PaidPlan,
    Version,
    answer_to_csms_call,
    decode,
    encode_call,
    encode_error,
    encode_result,
    stand_in_answer,
)
from benchmarks.ocpp_load_setup import Api
from benchmarks.ocpp_load_stats import WorkerReport, percentile
from qr_extension.keys import generate_key
from qr_extension.settlement import Settlement, check_settlement, verify_settlement
from qr_extension.start import StartAuthorization, issue_start_token, read_start_token
from qr_extension.tariff import Limits, Tariff

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(ocpp.__file__).parent


def validate(version: Version, action: str, payload: dict[str, Any], response: bool) -> None:
    suffix = "Response" if response else ("" if version == "1.6" else "Request")
    folder = "v16" if version == "1.6" else "v201"
    path = SCHEMAS / folder / "schemas" / f"{action}{suffix}.json"
    schema = json.loads(path.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(payload)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_three_cycles_are_schema_valid_and_answers_too(version: Version) -> None:
    script = ChargerScript("LOAD00001", version, now=lambda: 1_790_000_000.5)
    validate(version, *script.boot(), response=False)
    actions = []
    for counter in range(3 * len(CYCLE)):
        action, payload = script.next_call()
        validate(version, action, payload, response=False)
        answer = stand_in_answer(version, action, payload, counter)
        validate(version, action, answer, response=True)
        script.on_result(action, answer)
        actions.append(action)
    if version == "1.6":
        assert actions.count("StartTransaction") == actions.count("StopTransaction") == 3
    else:
        assert actions.count("TransactionEvent") == 3 * 4  # Started, 2 Updated, Ended
    assert actions.count("Heartbeat") == 6
    assert "BootNotification" not in actions


def test_v16_stop_and_meter_values_carry_the_csms_transaction_id() -> None:
    script = ChargerScript("LOAD00002", "1.6", now=lambda: 1_790_000_000.0)
    script.next_call()  # status
    action, start = script.next_call()
    assert action == "StartTransaction"
    script.on_result(action, {"transactionId": 4711, "idTagInfo": {"status": "Accepted"}})
    meters = [script.next_call()[1] for _ in range(4)]
    assert [m["transactionId"] for m in meters] == [4711] * 4
    action, stop = script.next_call()
    assert (action, stop["transactionId"]) == ("StopTransaction", 4711)
    assert stop["meterStop"] == start["meterStart"] + 4 * 250


def test_v201_transactions_are_unique_and_seq_no_restarts_per_transaction() -> None:
    script = ChargerScript("LOAD00003", "2.0.1", now=lambda: 1_790_000_000.0)
    events = []
    for _ in range(2 * len(CYCLE)):
        action, payload = script.next_call()
        if action == "TransactionEvent":
            events.append(payload)
    ids = [e["transactionInfo"]["transactionId"] for e in events]
    assert len(set(ids)) == 2 and all(len(i) <= 36 for i in ids)
    assert [e["seqNo"] for e in events] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [e["eventType"] for e in events[:4]] == ["Started", "Updated", "Updated", "Ended"]
    assert events[0]["idToken"] == {"idToken": "BENCH", "type": "Central"}


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("step", range(len(CYCLE)))
def test_a_charger_begun_mid_cycle_never_sends_an_orphan_stop(version: Version, step: int) -> None:
    script = ChargerScript("LOAD00004", version, now=lambda: 1_790_000_000.0)
    script.begin_at(step)
    open_transaction = False
    for counter in range(2 * len(CYCLE)):
        action, payload = script.next_call()
        validate(version, action, payload, response=False)
        script.on_result(action, stand_in_answer(version, action, payload, counter))
        kind = payload.get("eventType") if action == "TransactionEvent" else action
        if kind in ("StartTransaction", "Started"):
            assert not open_transaction
            open_transaction = True
        elif kind in ("StopTransaction", "Ended"):
            assert open_transaction  # never a stop without its start
            open_transaction = False
        elif action == "MeterValues" and version == "1.6":
            assert open_transaction and payload["transactionId"] == script.transaction_id


def test_heartbeats_only_cycle() -> None:
    script = ChargerScript("LOAD00004", "2.0.1", cycle=HEARTBEATS_ONLY)
    assert {script.next_call()[0] for _ in range(5)} == {"Heartbeat"}


def test_frames_round_trip_and_garbage_is_refused() -> None:
    call = decode(encode_call("7", "Heartbeat", {}))
    assert (call.kind, call.message_id, call.action) == (2, "7", "Heartbeat")
    assert decode(encode_result("7", {"a": 1})).payload == {"a": 1}
    assert decode(encode_error("7", "InternalError")).error_code == "InternalError"
    for bad in ("{", "[]", '[2, 7, "Heartbeat", {}]', '[5, "1", {}]', '{"a": 1}'):
        with pytest.raises(FrameError):
            decode(bad)


def test_charger_answers_data_transfer_as_a_charger_without_the_extension() -> None:
    answer = answer_to_csms_call("2.0.1", "DataTransfer", {"vendorId": "org.qrcharge"})
    assert answer == {"status": "UnknownVendorId"}
    validate("2.0.1", "DataTransfer", answer, response=True)
    assert answer_to_csms_call("1.6", "UnlockConnector", {}) is None


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([3.0], 99) == 3.0


def test_specs_interleave_versions_by_share() -> None:
    specs = charger_specs(10, 0.3, "n")
    assert [s.version for s in specs].count("2.0.1") == 3
    assert len({s.charger_id for s in specs}) == 10
    assert {s.version for s in charger_specs(4, 0.0, "n")} == {"1.6"}
    assert len({s.tag for s in specs}) == 10 and specs[0].password != specs[1].password
    assert {s.password for s in charger_specs(3, 0.5, "n", "fleet-pw")} == {"fleet-pw"}
    assert paid_indices(8, 0.25) == [3, 7] and paid_indices(4, 0.0) == []


async def test_worker_counts_callerrors_and_answers_csms_calls() -> None:
    """A server that refuses MeterValues and calls DataTransfer once per charger."""

    async def handler(ws: ServerConnection) -> None:
        version = VERSION_OF_SUBPROTOCOL[ws.subprotocol or ""]
        await ws.send(encode_call("srv-1", "DataTransfer", {"vendorId": "org.qrcharge"}))
        async for text in ws:
            frame = decode(text)
            if frame.kind != 2:
                continue
            if frame.action == "MeterValues":
                await ws.send(encode_error(frame.message_id, "InternalError"))
            else:
                answer = stand_in_answer(version, frame.action, frame.payload, 1)
                await ws.send(encode_result(frame.message_id, answer))

    async with serve(
        handler, "127.0.0.1", 0, subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS.values()]
    ) as server:
        port = server.sockets[0].getsockname()[1]
        chargers = (ChargerSpec("A1", "p", "1.6"), ChargerSpec("B2", "p", "2.0.1"))
        plan = WorkerPlan(port, chargers, True, 10.0, 0.05, 1.0, 5.0, 5.0, 0, seed=3)
        worker = Worker(plan)
        tasks = await worker.connect_all()
        worker.go(time.time())
        report = await asyncio.wait_for(worker.finish(tasks), 10)

    assert (report.attempted, report.booted, report.held_at_end) == (2, 2, 2)
    assert report.incoming_calls["DataTransfer"] == 2
    refused = report.callerrors["InternalError"]
    assert refused > 0 and "MeterValues" not in report.latencies
    assert report.sent == report.answered + refused
    assert 30 <= report.sent <= 42  # 2 chargers x 1 s / 0.05 s, give or take the phase


async def test_worker_retries_a_refused_handshake_and_reports_final_failures() -> None:
    refused: Counter[str] = Counter()

    def process_request(ws: ServerConnection, request: Request) -> Response | None:
        charger = request.path.rsplit("/", 1)[-1]
        refused[charger] += 1
        if charger == "NEVER" or refused[charger] == 1:
            response = ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "busy\n")
            if charger == "LATE":  # honoured instead of the (here 1-3 ms) backoff
                response.headers["Retry-After"] = "0.2"
            return response
        return None

    async def handler(ws: ServerConnection) -> None:
        version = VERSION_OF_SUBPROTOCOL[ws.subprotocol or ""]
        async for text in ws:
            frame = decode(text)
            answer = stand_in_answer(version, frame.action, frame.payload, 1)
            await ws.send(encode_result(frame.message_id, answer))

    async with serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS.values()],
        process_request=process_request,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        chargers = (ChargerSpec("LATE", "p", "1.6"), ChargerSpec("NEVER", "p", "2.0.1"))
        plan = WorkerPlan(port, chargers, True, 10.0, 1.0, 0.1, 5.0, 5.0, 2, 1, 0.001)
        worker = Worker(plan)
        tasks = await worker.connect_all()
        worker.go(time.time())
        report = await asyncio.wait_for(worker.finish(tasks), 10)

    assert (report.attempted, report.booted) == (2, 1)
    assert report.connect_ms[0] >= 200  # waited the server's Retry-After
    assert refused == {"LATE": 2, "NEVER": 3}
    assert report.connect_failures == {"HTTP 503": 1}
    assert report.connect_retries == {"HTTP 503": 3}


def test_self_test_run_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    cmd = [sys.executable, "-m", "benchmarks.ocpp_load", "--self-test", "--storm"]
    cmd += ["--chargers", "20", "--rate", "100", "--duration", "2", "--json", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    conns, msgs = summary["connections"], summary["messages"]
    assert (conns["attempted"], conns["booted"], conns["held_at_end"]) == (20, 20, 20)
    assert msgs["answered"] == msgs["sent"] and 180 <= msgs["sent"] <= 220
    assert msgs["timeouts"] == msgs["lost"] == 0 and not msgs["callerrors"]
    assert summary["latency"]["p99_ms"] < 1000
    assert summary["csms_rss_mb"]["peak"] > 1
    assert "throughput" in done.stdout


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_paid_session_starts_with_the_order_and_ends_with_its_settlement(
    version: Version,
) -> None:
    now = 1_790_000_000.0
    csms_key, charger_key = generate_key(), generate_key()
    tariff = Tariff(id="T1", currency="CNY", fixed_fee=5000, energy_price=15000)
    token = issue_start_token(
        key=csms_key,
        charge_point_id="LOAD00005",
        order_id="ORDER1",
        evse_id=1,
        tariff=tariff,
        limits=Limits(amount=1000),
        issued_at=int(now) - 10,
        validity_s=900,
    )
    paid = PaidPlan(deque([("ORDER1", token)]), charger_key, "qrcharge")
    script = ChargerScript("LOAD00005", version, now=lambda: now, tag="RF1", paid=paid)
    validate(version, *paid.key_call(), response=False)
    calls = []
    for counter in range(2 * len(CYCLE)):
        action, payload = script.next_call()
        validate(version, action, payload, response=False)
        answer = stand_in_answer(version, action, payload, counter)
        script.on_result(action, answer, payload)
        calls.append((action, payload))
    start = calls[1][1]
    assert start.get("idTag", start.get("idToken", {}).get("idToken")) == "ORDER1"
    transfers = [p for a, p in calls if a == "DataTransfer"]
    assert [t["messageId"] for t in transfers] == ["Settlement", "Synced"]  # once: one order
    settlement = verify_settlement(
        transfers[0]["data"], key=charger_key.public, audience="qrcharge"
    )
    assert isinstance(settlement, Settlement)
    auth = read_start_token(token)
    assert isinstance(auth, StartAuthorization)
    assert check_settlement(settlement, auth, leeway_s=300, now=int(now)) is None  # it pays
    assert settlement.energy_wh == 4 * 250 and json.loads(transfers[1]["data"]) == {"seq": 1}
    paid_log, rfid_log = script.log[0], script.log[1]
    assert (paid_log.kind, paid_log.id_tag, paid_log.start_status) == (
        "order",
        "ORDER1",
        "Accepted",
    )
    assert paid_log.ended and paid_log.settlement == paid_log.synced == "Accepted"
    assert (rfid_log.kind, rfid_log.id_tag, rfid_log.settlement) == ("rfid", "RF1", "")
    assert calls.count(("Heartbeat", {})) == 2  # the second cycle's heartbeats stay heartbeats


def test_must_deliver_is_what_a_charger_queues() -> None:
    assert must_deliver("StartTransaction", {}) and must_deliver("TransactionEvent", {})
    assert must_deliver("DataTransfer", {"messageId": "Settlement"})
    assert not must_deliver("DataTransfer", {"messageId": "SettlementKey"})
    assert not must_deliver("MeterValues", {}) and not must_deliver("Heartbeat", {})


def _run_load(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "summary.json"
    cmd = [sys.executable, "-m", "benchmarks.ocpp_load", "--chargers", "8", "--rate", "16"]
    cmd += ["--paid-share", "0.5", "--drivers", "2", "--json", str(out), *extra]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text()), done.stdout


def test_a_real_csms_run_captures_its_paid_orders_and_counts_match(tmp_path: Path) -> None:
    summary, stdout = _run_load(tmp_path, "--duration", "6", "--storm")
    check = summary["check"]
    assert check["ok"], check
    sessions, seen, db = check["sessions"], check["orders_seen"], check["orders_in_database"]
    assert sessions["by_kind"]["order"] >= 2 and sessions["by_kind"]["rfid"] >= 2
    assert sessions["start_statuses"].get("rfid:Accepted", 0) == sessions["by_kind"]["rfid"]
    assert seen["captured"] == db["captured"] >= 1 and seen["signed_settlements"] >= 1
    assert sessions["lost_starts"] == sessions["duplicated"] == check["charged_twice"] == 0
    assert summary["connections"]["settlement_key_answers"] == {"Accepted": 4}
    assert "paid orders" in stdout and "check        OK" in stdout


@pytest.mark.postgres
def test_a_killed_worker_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    summary, _ = _run_load(
        tmp_path,
        *("--duration", "14", "--db", "postgresql", "--csms-workers", "2"),
        *("--kill-worker-at", "4"),
    )
    check = summary["check"]
    assert check["ok"], check
    assert summary["messages"]["undelivered"] == 0
    assert summary["reconnect"]["count"] == summary["connections"]["dropped_during_load"]
    assert summary["connections"]["held_at_end"] == 8


def test_settlement_keys_are_the_same_for_a_charger_in_every_run_of_a_seed() -> None:
    first, again = settlement_key("db-1", "LOAD00001"), settlement_key("db-1", "LOAD00001")
    assert first.kid == again.kid
    assert first.public.to_jwk() == again.public.to_jwk()
    assert settlement_key("db-1", "LOAD00002").kid != first.kid
    assert settlement_key("db-2", "LOAD00001").kid != first.kid
    assert settlement_key("", "LOAD00001").kid != settlement_key("", "LOAD00001").kid  # fresh


class _DroppedSocket:
    """A WebSocket whose peer is gone: the reader ends first, then the pending send fails."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()

    async def send(self, text: str) -> None:
        self.gone.set()
        for _ in range(3):  # the reader's turn: it ends and marks the CALL lost
            await asyncio.sleep(0)
        raise ConnectionClosed(None, None)

    def __aiter__(self) -> _DroppedSocket:
        return self

    async def __anext__(self) -> str:
        await self.gone.wait()
        raise ConnectionClosed(None, None)

    async def close(self) -> None:
        self.gone.set()


async def test_a_call_lost_while_sending_leaves_no_unretrieved_future() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        link = Link(_DroppedSocket(), "1.6", WorkerReport())  # type: ignore[arg-type]
        with pytest.raises(CallFailed, match="lost"):
            await link.call("Heartbeat", {}, timeout_s=5)
        await link.close()
        del link
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [c.get("message") for c in reported] == []


async def test_an_idempotent_request_is_sent_again_when_its_connection_is_reset() -> None:
    """The first connection is reset once its request is read (the keep-alive race, or a
    server that dropped it); the request goes out once more on a new one."""
    requests: list[bytes] = []

    async def serve_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            requests.append(head.split(b"\r\n")[0])
            if len(requests) == 1:  # RST, as a server closing with a request unread does
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()

    server = await asyncio.start_server(serve_http, "127.0.0.1", 0)
    api = Api(server.sockets[0].getsockname()[1], "key", concurrency=1)
    try:
        body = {"id_tag": "T1", "status": "Accepted"}
        r = await api.idempotent("PUT", "/api/v1/admin/id-tags", json=body)
        assert r.status_code == 200
        assert requests == [b"PUT /api/v1/admin/id-tags HTTP/1.1"] * 2
        assert dict(api.stats.counts) == {"resent_ReadError": 1}
    finally:
        await api.close()
        server.close()


async def test_a_fleet_partly_registered_by_an_earlier_run_is_completed() -> None:
    """A kept database holds the first chargers of the fleet (an earlier, smaller run): the
    bulk route refuses any chunk with one of them (409, nothing added); the rest still get
    registered, each once."""
    existing = {f"LOAD{i:05d}" for i in range(3)}
    added: list[str] = []
    asked: list[bytes] = []

    async def serve_bulk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            asked.append(head.split(b" ")[0])
            if head.startswith(b"GET "):  # GET /api/v1/admin/chargers/{id}
                known = head.split(b" ")[1].rsplit(b"/", 1)[1].decode() in existing
                status = b"200 OK" if known else b"404 Not Found"
                writer.write(b"HTTP/1.1 %s\r\ncontent-length: 2\r\n\r\n{}" % status)
                await writer.drain()
                continue
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            ids = [c["id"] for c in json.loads(await reader.readexactly(length))["chargers"]]
            if existing.intersection(ids):
                status, body = b"409 Conflict", b'{"detail":"exists"}'
            else:
                existing.update(ids)
                added.extend(ids)
                status, body = b"201 Created", json.dumps({"created": len(ids)}).encode()
            writer.write(b"HTTP/1.1 %s\r\ncontent-length: %d\r\n\r\n%s" % (status, len(body), body))
            await writer.drain()

    server = await asyncio.start_server(serve_bulk, "127.0.0.1", 0)
    api = Api(server.sockets[0].getsockname()[1], "key", concurrency=1)
    fleet = [ChargerSpec(f"LOAD{i:05d}", "p", "1.6") for i in range(10)]
    try:
        assert await api.register_fleet(fleet, "hash") == 7
        assert sorted(added) == [f"LOAD{i:05d}" for i in range(3, 10)]
        asked.clear()
        assert await api.register_fleet(fleet, "hash") == 0  # all there: one refusal, one look
        assert asked == [b"POST", b"GET"]
    finally:
        await api.close()
        server.close()
