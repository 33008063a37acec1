"""Network faults between the reference charger and the CSMS, through a proxy the test holds:
the connection cut, stalled (no FIN), delayed, open in one direction only, a frame duplicated,
and the link down for a whole offline session.

A 1.6 and a 2.0.1 charger (``charge_point.Charger``, in this process) each run one paid
session per fault, started from the driver's start QR (online, and once offline), against a
real CSMS (in-process, SQLite). After each session the charger's queue must be empty with
nothing dropped, and the CSMS must hold everything the charger sent exactly once, in order:
the transaction, each meter reading, each 2.0.1 event (seqNo without gap or repeat); the order
settled and, once the driver confirms, paid exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from charge_point.charger import Charger
from qr_extension.refusal import Refusal
from qr_extension.wire import parse_ocpp_timestamp
from tests.charge_point.central import until
from tests.charge_point.conftest import station_settings
from tests.csms.conftest import LiveCsms, make_settings, serve
from tests.faults import tally
from tests.faults.checks import assert_invariants, rows
from tests.faults.proxy import FaultProxy, ocpp_message

pytestmark = pytest.mark.slow

PASSWORD = "net-fault-charger-pw"
CALL_TIMEOUT_S = 1.0
TRANSACTION_ACTIONS = {"StartTransaction", "MeterValues", "StopTransaction", "TransactionEvent"}


def is_call(action: str | set[str]) -> Callable[[str], bool]:
    actions = {action} if isinstance(action, str) else action

    def matches(text: str) -> bool:
        message = ocpp_message(text)
        return message is not None and message[0] == 2 and message[2] in actions

    return matches


def is_answer(text: str) -> bool:
    message = ocpp_message(text)
    return message is not None and message[0] == 3


@dataclass
class Rig:
    """One charger behind its own proxy, against the shared CSMS."""

    csms: LiveCsms
    charger: Charger
    proxy: FaultProxy
    driver: dict[str, str]
    version: str

    @property
    def station(self) -> Any:
        return self.charger.station

    async def settled(self) -> None:
        """Until the charger is online with nothing left in its queue."""
        await until(
            lambda: self.station.online and self.station.store.queue_len() == 0, 20, "delivered"
        )

    async def sent(self, what: Callable[[str], bool], count: int = 1) -> None:
        """Until ``count`` frames the charger sent matched ``what`` (as the proxy saw them)."""
        await until(lambda: sum(map(what, self.proxy.up.seen)) >= count, 15, "sent")


@asynccontextmanager
async def rig(
    csms: LiveCsms, tmp_path: Path, version: str, driver: dict[str, str]
) -> AsyncIterator[Rig]:
    charger_id = f"NET{version.replace('.', '')}"
    await csms.add_charger(charger_id, PASSWORD)
    proxy = FaultProxy(csms.port)
    await proxy.start()
    settings = station_settings(
        tmp_path / charger_id,
        charge_point_id=charger_id,
        ocpp_version=version,
        csms_url=f"ws://127.0.0.1:{proxy.port}/ocpp",
        password=PASSWORD,
        trust_first_keys=True,
        time_scale=20,
        meter_interval_s=1,
        call_timeout_s=CALL_TIMEOUT_S,
        message_attempts=3,
        message_retry_s=0,  # retried at once: three timeouts used to drop a row
        reconnect_min_s=0.05,
        reconnect_max_s=0.3,
    )
    charger = Charger(settings)
    task = asyncio.create_task(charger.run())
    try:
        await until(lambda: charger.station.online and len(charger.station.trusted) > 0, 15, "boot")
        yield Rig(csms, charger, proxy, driver, version)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        charger.store.close()
        await proxy.close()


# --- the faults: each applies itself to a session under way and heals ---------------------


async def cut(rig: Rig) -> None:
    connects = rig.charger.link.connects
    rig.proxy.cut()
    await until(lambda: rig.charger.link.connects > connects, 10, "reconnected")


async def stall(rig: Rig) -> None:
    """No byte either way and no FIN, for longer than three of the charger's call timeouts
    (its attempts at a message)."""
    rig.proxy.up.set("stall")
    rig.proxy.down.set("stall")
    await asyncio.sleep(CALL_TIMEOUT_S * 4)
    rig.proxy.heal()


async def answers_dropped(rig: Rig) -> None:
    """The charger's messages reach the CSMS; its answers never come back."""
    rig.proxy.down.set("drop")
    await asyncio.sleep(CALL_TIMEOUT_S * 4)
    rig.proxy.heal()


async def delayed(rig: Rig) -> None:
    """Every frame a third of the charger's call timeout late, each way."""
    rig.proxy.up.set(delay_s=CALL_TIMEOUT_S / 3)
    rig.proxy.down.set(delay_s=CALL_TIMEOUT_S / 3)
    await asyncio.sleep(2)
    rig.proxy.heal()


async def duplicated(rig: Rig) -> None:
    """A transaction message sent twice on the wire, and an answer received twice."""
    update = "MeterValues" if rig.version == "1.6" else "TransactionEvent"
    rig.proxy.up.duplicate = is_call(update)
    rig.proxy.down.duplicate = is_answer
    await until(lambda: rig.proxy.up.duplicated and rig.proxy.down.duplicated, 10, "duplicated")


FAULTS: dict[str, Callable[[Rig], Awaitable[None]]] = {
    "cut": cut,
    "stall": stall,
    "answers dropped": answers_dropped,
    "delay": delayed,
    "frame duplicated": duplicated,
}


# --- one paid session through a fault ----------------------------------------------------------


async def order(rig: Rig) -> dict[str, Any]:
    r = await rig.csms.http.post(
        "/api/v1/orders",
        json={"charger_id": rig.station.id, "evse_id": 1, "amount": 3000},
        headers=rig.driver,
    )
    assert r.status_code == 201, r.text
    placed: dict[str, Any] = r.json()
    return placed


async def online_session(rig: Rig, fault: str) -> str:
    placed = await order(rig)
    rig.station.plug(1, capacity_wh=60_000, soc=0.2)
    assert not isinstance(rig.station.scan(placed["start_token"]), Refusal)
    update = is_call("MeterValues" if rig.version == "1.6" else "TransactionEvent")
    await rig.sent(update, sum(map(update, rig.proxy.up.seen)) + 1)
    await FAULTS[fault](rig)
    tally.injected(f"network: {fault}")
    await asyncio.sleep(1.2)  # a sample after the fault
    rig.station.unplug(1)
    await rig.settled()
    return str(placed["id"])


async def offline_session(rig: Rig) -> str:
    """The link is down from before the start QR to after the unplug; the queue is then
    delivered with its first transaction message duplicated and the connection cut once."""
    placed = await order(rig)
    rig.proxy.refuse = True
    rig.proxy.cut()
    await until(lambda: not rig.station.online, 5, "offline")
    rig.station.plug(1, capacity_wh=60_000, soc=0.2)
    assert not isinstance(rig.station.scan(placed["start_token"]), Refusal)
    await asyncio.sleep(2.5)
    rig.station.unplug(1)
    assert rig.station.store.queue_len() > 2
    start = "StartTransaction" if rig.version == "1.6" else "TransactionEvent"
    rig.proxy.up.duplicate = is_call(start)
    seen = len(rig.proxy.up.seen)
    rig.proxy.heal()
    await until(lambda: sum(map(is_call(TRANSACTION_ACTIONS), rig.proxy.up.seen[seen:])) >= 2, 10)
    rig.proxy.cut()
    tally.injected("network: link down for a whole session", 1)
    tally.injected("network: frame duplicated", 1)
    tally.injected("network: cut", 1)
    await rig.settled()
    return str(placed["id"])


# --- what the CSMS holds -------------------------------------------------------------------------


def calls(rig: Rig, action: str) -> list[dict[str, Any]]:
    """The distinct payloads of ``action`` the charger sent (a resend is the same payload)."""
    out: list[dict[str, Any]] = []
    for text in rig.proxy.up.seen:
        message = ocpp_message(text)
        if message and message[0] == 2 and message[2] == action and message[3] not in out:
            out.append(message[3])
    return out


Reading = tuple[datetime, str, str | None, float]


def readings(payloads: list[dict[str, Any]], key: str) -> Counter[Reading]:
    """(instant, measurand, context, value) of every sampled value in the payloads, counted."""
    found: Counter[Reading] = Counter()
    for payload in payloads:
        for group in payload.get(key, []):
            at = parse_ocpp_timestamp(group["timestamp"])
            for sampled in group["sampledValue"]:
                reading = (
                    at,
                    sampled["measurand"],
                    sampled.get("context"),
                    float(sampled["value"]),
                )
                found[reading] += 1
    return found


async def check_once(rig: Rig, order_id: str) -> None:
    url = rig.csms.ctx.settings.resolved_database_url
    (txn,) = await rows(
        url,
        "SELECT id, transaction_id, state, meter_start_wh, meter_stop_wh FROM transactions "
        "WHERE id_tag = :tag",
        tag=order_id,
    )
    pk, transaction_id, state, meter_start, meter_stop = txn
    assert state == "Ended"
    stored = await rows(
        url,
        "SELECT timestamp, measurand, context, value FROM meter_values WHERE transaction_pk = :pk",
        pk=pk,
    )
    stored_readings = Counter((_utc(t), m, c, float(v)) for t, m, c, v in stored)
    if rig.version == "1.6":
        (start,) = [p for p in calls(rig, "StartTransaction") if p["idTag"] == order_id]
        (stop,) = [
            p for p in calls(rig, "StopTransaction") if str(p["transactionId"]) == transaction_id
        ]
        assert (meter_start, meter_stop) == (start["meterStart"], stop["meterStop"])
        samples = [
            p for p in calls(rig, "MeterValues") if str(p.get("transactionId")) == transaction_id
        ]
        sent = readings(samples, "meterValue")
    else:
        events = [
            p for p in calls(rig, "TransactionEvent")
            if p["transactionInfo"]["transactionId"] == transaction_id
        ]  # fmt: skip
        sent_seq = [e["seqNo"] for e in events]
        assert sorted(sent_seq) == list(range(len(events))) == sorted(set(sent_seq))
        assert events[0]["eventType"] == "Started" and events[-1]["eventType"] == "Ended"
        stored_seq = await rows(
            url,
            "SELECT seq_no FROM transaction_events WHERE transaction_id = :t",
            t=transaction_id,
        )
        assert Counter(s for (s,) in stored_seq) == Counter(range(len(events)))
        sent = readings(events, "meterValue")
    assert set(sent.values()) == {1}, sent
    assert stored_readings == sent, (stored_readings - sent, sent - stored_readings)

    http = rig.csms.http
    r = await http.get(f"/api/v1/orders/{order_id}", headers=rig.driver)
    placed = r.json()
    assert (placed["status"], placed["payment_status"]) == ("settled", "pending"), placed
    r = await http.post(f"/api/v1/payments/{placed['payment_id']}/confirm", headers=rig.driver)
    assert r.status_code == 200, r.text
    paid = (await http.get(f"/api/v1/orders/{order_id}", headers=rig.driver)).json()
    assert paid["status"] == "paid" and paid["receipt_id"] == r.json()["id"]
    records = await rows(
        url, "SELECT txn, ocpp_transaction_pk FROM settlements WHERE order_id = :o", o=order_id
    )
    assert len(records) == 1 and records[0][0] is not None and records[0][1] == pk, records
    payments = await rows(url, "SELECT amount FROM payments WHERE order_id = :o", o=order_id)
    assert payments == [(paid["amount"],)]


def _utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def run_sessions(rig: Rig) -> None:
    for fault in FAULTS:
        await check_once(rig, await online_session(rig, fault))
    await check_once(rig, await offline_session(rig))


async def test_network_faults_lose_and_repeat_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="charge_point")
    settings = make_settings(tmp_path, ocpp_call_timeout_s=3)
    async with serve(settings) as csms:
        driver = await csms.driver("net@example.org")
        r = await csms.http.post(
            "/api/v1/me/wallet/top-ups", json={"amount": 60_000}, headers=driver
        )
        assert r.status_code == 201, r.text
        async with (
            rig(csms, tmp_path, "1.6", driver) as r16,
            rig(csms, tmp_path, "2.0.1", driver) as r201,
        ):
            await asyncio.gather(run_sessions(r16), run_sessions(r201))
        url = settings.resolved_database_url
        await assert_invariants(url)
        report = (await csms.http.get("/api/v1/admin/reconciliation")).json()
        counts = report["counts"]
        assert counts["orders"] == 2 * (len(FAULTS) + 1) == counts["settled_by_both"], counts
        assert counts["stuck_holds"] == counts["disagreements"] == counts["pending_payments"] == 0
        assert [row["flags"] for row in report["rows"]] == [""] * counts["orders"]
    dropped = [r.getMessage() for r in caplog.records if "dropping" in r.getMessage()]
    assert dropped == []
