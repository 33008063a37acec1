"""The whole flow over HTTP and a real OCPP connection (the ocpp library's ChargePoint as the
charger): online with a remote start (2.0.1), and offline with a late sync (1.6), on SQLite and
PostgreSQL. The app's clock is a manual one, so the reaper runs at chosen moments."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from csms.payments.reaper import Reaper
from qr_extension.keys import SigningKey, generate_key
from qr_extension.qr import render_png
from qr_extension.settlement import build_settlement, sign_settlement
from qr_extension.start import StartAuthorization, read_start_token
from qr_extension.tariff import UsageBucket
from qr_extension.wire import VENDOR_ID, ocpp_timestamp

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth, make_settings, serve
from ..ledger_invariants import assert_ledger_consistent
from .conftest import Clock
from .invariants import assert_money_consistent


@dataclass
class Flow:
    csms: LiveCsms
    clock: Clock

    @property
    def reaper(self) -> Reaper:
        reaper = self.csms.ctx.reaper
        assert isinstance(reaper, Reaper)
        return reaper

    async def driver(self, email: str, funds: int) -> dict[str, str]:
        http = self.csms.http
        r = await http.post("/api/v1/users", json={"email": email, "password": "pw-long-enough"})
        assert r.status_code == 201, r.text
        r = await http.post("/api/v1/token", data={"username": email, "password": "pw-long-enough"})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        if funds:
            r = await http.post("/api/v1/me/wallet/top-ups", json={"amount": funds}, headers=auth)
            assert r.status_code == 201, r.text
        return auth

    async def balance(self, auth: dict[str, str]) -> int:
        r = await self.csms.http.get("/api/v1/me", headers=auth)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        wallet = body.get("wallet", body)
        return int(wallet.get("available", wallet.get("balance")))


@contextlib.asynccontextmanager
async def flow(tmp_path: Path, db_url: str) -> AsyncIterator[Flow]:
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    settings = make_settings(
        tmp_path, database_url=db_url, reaper_interval_s=0, driver_token_ttl_s=86_400
    )
    async with serve(settings, clock=clock) as csms:
        yield Flow(csms, clock)
        async with csms.ctx.db.session() as session:
            await assert_ledger_consistent(session)
        await assert_money_consistent(csms.ctx.db)


def settle(
    auth: StartAuthorization,
    key: SigningKey,
    *,
    txn: str,
    start: int,
    wh: int,
    seq: int,
    clock: Clock,
) -> str:
    """A signed settlement of a 30-minute session from ``start``; ``clock`` is moved to its
    end if it is behind (nobody holds a settlement before the session has ended)."""
    s = build_settlement(
        auth,
        audience="qrcharge",
        transaction_id=txn,
        started_at=start,
        stopped_at=start + 1800,
        meter_start_wh=500,
        meter_stop_wh=500 + wh,
        usage=[UsageBucket(0, wh, 1800, 0)],
        reason="EVDisconnected",
        seq=seq,
        offline=False,
        issued_at=start + 1800,
    )
    clock.now = max(clock.now, datetime.fromtimestamp(s.issued_at, UTC))
    return sign_settlement(s, key)


def dt201(message_id: str, data: str) -> Any:
    return call201.DataTransfer(vendor_id=VENDOR_ID, message_id=message_id, data=data)


async def test_online_remote_start_201(tmp_path: Path, db_url: str) -> None:
    async with flow(tmp_path, db_url) as f:
        http = f.csms.http
        await f.csms.add_charger("ON201")
        alice = await f.driver("alice@example.org", 10_000)
        mallory = await f.driver("mallory@example.org", 10_000)
        key = generate_key()
        async with connect(
            f.csms.ws_url("ON201"), Client201, "ocpp2.0.1", basic_auth("ON201")
        ) as cp:
            pin = await cp.call(dt201("SettlementKey", json.dumps(key.public.to_jwk())))
            assert pin.status == "Accepted"
            r = await http.get("/api/v1/chargers/ON201", params={"evse": 1}, headers=alice)
            assert r.status_code == 200, r.text

            r = await http.post(
                "/api/v1/orders",
                json={"charger_id": "ON201", "evse_id": 1, "amount": 3000},
                headers=alice,
            )
            assert r.status_code == 201, r.text
            order = r.json()
            assert order["status"] == "created" and order["hold_amount"] == 3000
            assert len(order["id"]) <= 15 and order["id"].isalnum() and order["id"].isupper()
            assert await f.balance(alice) == 7000
            for suffix, kind in (("qr.svg", "image/svg+xml"), ("qr.png", "image/png")):
                r = await http.get(f"/api/v1/orders/{order['id']}/{suffix}", headers=alice)
                assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
                r = await http.get(f"/api/v1/orders/{order['id']}/{suffix}", headers=mallory)
                assert r.status_code == 404
            assert (
                await http.get(f"/api/v1/orders/{order['id']}", headers=mallory)
            ).status_code == 404

            r = await http.post(f"/api/v1/orders/{order['id']}/remote-start", headers=alice)
            assert r.status_code == 200, r.text
            (action, sent) = cp.received[-1]
            assert action == "RequestStartTransaction"
            assert sent["id_token"] == {"id_token": order["id"], "type": "Central"}

            auth = read_start_token(order["start_token"])
            assert isinstance(auth, StartAuthorization)
            t0 = f.clock.now
            txn = "000001-0a0b0c"
            started = await cp.call(
                call201.TransactionEvent(
                    event_type="Started",
                    timestamp=ocpp_timestamp(t0),
                    trigger_reason="RemoteStart",
                    seq_no=0,
                    transaction_info={"transaction_id": txn},
                    id_token={"id_token": order["id"], "type": "Central"},
                    evse={"id": 1, "connector_id": 1},
                    meter_value=[_register(t0, 500, "Transaction.Begin")],
                ),
                suppress=False,
            )
            assert started.id_token_info["status"] == "Accepted"
            r = await http.get(f"/api/v1/orders/{order['id']}", headers=alice)
            assert r.json()["status"] == "started"
            t1 = t0 + timedelta(minutes=30)
            ended = call201.TransactionEvent(
                event_type="Ended",
                timestamp=ocpp_timestamp(t1),
                trigger_reason="EVDeparted",
                seq_no=1,
                transaction_info={"transaction_id": txn, "stopped_reason": "EVDisconnected"},
                meter_value=[_register(t1, 8500, "Transaction.End")],
            )
            await cp.call(ended, suppress=False)
            token = settle(
                auth, key, txn=txn, start=int(t0.timestamp()), wh=8000, seq=1, clock=f.clock
            )
            assert (await cp.call(dt201("Settlement", token))).status == "Accepted"
            await cp.call(ended, suppress=False)  # a duplicate
            assert (await cp.call(dt201("Synced", '{"seq": 1}'))).status == "Accepted"

        r = await http.get(f"/api/v1/orders/{order['id']}", headers=alice)
        settled = r.json()
        # 8 kWh * 1.20 + 0.5 h * 0.30 = 9.75
        assert (settled["status"], settled["amount"], settled["energy_wh"]) == (
            "settled",
            975,
            8000,
        )
        r = await http.post("/api/v1/settlements", json={"token": token}, headers=alice)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["payment_id"] == settled["payment_id"] and answer["amount"] == 975
        assert answer["breakdown"] == {"fixed": 0, "energy": 960, "time": 15, "idle": 0}
        r = await http.post(f"/api/v1/payments/{answer['payment_id']}/confirm", headers=mallory)
        assert r.status_code == 404
        r = await http.post(f"/api/v1/payments/{answer['payment_id']}/confirm", headers=alice)
        assert r.status_code == 200, r.text
        receipt = r.json()
        assert receipt["amount"] == 975 and receipt["receipt_id"]
        assert (
            await http.get(f"/api/v1/receipts/{receipt['id']}", headers=alice)
        ).status_code == 200
        assert (
            await http.get(f"/api/v1/receipts/{receipt['id']}", headers=mallory)
        ).status_code == 404
        assert await f.balance(alice) == 10_000 - 975
        r = await http.post("/api/v1/settlements", json={"token": token}, headers=alice)
        assert r.status_code == 409 and r.json()["detail"]["reason"] == "replayed"

        report = (await http.get("/api/v1/admin/reconciliation")).json()
        assert report["counts"]["settled_by_both"] == 1
        assert report["counts"]["disagreements"] == 0
        csv = (await http.get("/api/v1/admin/reconciliation.csv")).text
        assert csv.splitlines()[0].startswith("order_id,") and order["id"] in csv


def _register(at: datetime, wh: int, context: str) -> dict[str, Any]:
    return {
        "timestamp": ocpp_timestamp(at),
        "sampled_value": [
            {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"}
        ],
    }


def _register16(at: datetime, wh: int) -> dict[str, Any]:
    sample = {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    return {"timestamp": ocpp_timestamp(at), "sampled_value": [sample]}


async def test_offline_with_late_sync_16(tmp_path: Path, db_url: str) -> None:
    async with flow(tmp_path, db_url) as f:
        http = f.csms.http
        await f.csms.add_charger("OFF16")
        bob = await f.driver("bob@example.org", 10_000)
        eve = await f.driver("eve@example.org", 0)
        key = generate_key()
        # the operator pins the charger's key (it has not connected yet)
        r = await http.put(
            "/api/v1/admin/chargers/OFF16/settlement-key", json={"jwk": key.public.to_jwk()}
        )
        assert r.status_code in (200, 201), r.text
        orders = []
        for evse in (1, 2):
            r = await http.post(
                "/api/v1/orders",
                json={"charger_id": "OFF16", "evse_id": evse, "amount": 3000},
                headers=bob,
            )
            assert r.status_code == 201, r.text
            orders.append(r.json())
        used, unused = orders
        assert await f.balance(bob) == 10_000 - 2 * 3000
        auth = read_start_token(used["start_token"])
        assert isinstance(auth, StartAuthorization)
        t0 = f.clock.now + timedelta(minutes=2)
        token = settle(
            auth, key, txn="000009-ffffff", start=int(t0.timestamp()), wh=5000, seq=3, clock=f.clock
        )

        # eve photographs the settlement QR: bob's order is settled, eve learns nothing more
        photo = render_png(token)
        r = await http.post(
            "/api/v1/settlements", files={"image": ("qr.png", photo, "image/png")}, headers=eve
        )
        assert r.status_code == 202 and r.json() == {"status": "accepted"}
        r = await http.post(
            "/api/v1/settlements",
            files={"image": ("x.png", b"not an image", "image/png")},
            headers=bob,
        )
        assert r.status_code == 422 and "image" in r.json()["detail"]["message"]
        r = await http.get(f"/api/v1/orders/{used['id']}", headers=bob)
        assert r.json()["status"] == "settled" and r.json()["amount"] == 615

        # hours later the charger comes back and delivers its queue, then Synced
        f.clock.advance(3 * 3600)
        async with connect(f.csms.ws_url("OFF16"), Client16, "ocpp1.6", basic_auth("OFF16")) as cp:
            start = await cp.call(
                call16.StartTransaction(
                    connector_id=1, id_tag=used["id"], meter_start=500, timestamp=ocpp_timestamp(t0)
                ),
                suppress=False,
            )
            assert start.id_tag_info["status"] in ("Accepted", "Expired")
            await cp.call(
                call16.StopTransaction(
                    meter_stop=5500,
                    timestamp=ocpp_timestamp(t0 + timedelta(minutes=30)),
                    transaction_id=start.transaction_id,
                    id_tag=used["id"],
                    reason="EVDisconnected",
                ),
                suppress=False,
            )
            dt = call16.DataTransfer(vendor_id=VENDOR_ID, message_id="Settlement", data=token)
            assert (await cp.call(dt, suppress=False)).status == "Accepted"
            synced = call16.DataTransfer(
                vendor_id=VENDOR_ID, message_id="Synced", data='{"seq": 3}'
            )
            assert (await cp.call(synced, suppress=False)).status == "Accepted"

        # one pass: the unused order's hold is released (its token expired, then the charger
        # synced), the used order's payment is captured (auto_capture_s after the first copy)
        report = await f.reaper.reap_once()
        assert report.released == [unused["id"]] and len(report.captured) == 1
        r = await http.get(f"/api/v1/orders/{unused['id']}", headers=bob)
        assert r.json()["status"] == "expired"
        r = await http.get(f"/api/v1/orders/{used['id']}", headers=bob)
        body = r.json()
        assert body["status"] == "paid" and body["receipt_id"] and body["flagged"] is False
        assert await f.balance(bob) == 10_000 - 615
        detail = (await http.get(f"/api/v1/admin/orders/{used['id']}")).json()
        assert detail["settlements"][0]["sources"] == ["signed", "ocpp"]
        r = await http.get(f"/api/v1/receipts/{body['receipt_id']}", headers=eve)
        assert r.status_code == 404
        mine = (await http.get("/api/v1/settlements", headers=bob)).json()
        assert [s["order_id"] for s in mine] == [used["id"]]
        assert (await http.get("/api/v1/settlements", headers=eve)).json() == []
        r = await http.get(f"/api/v1/settlements/{mine[0]['id']}", headers=eve)
        assert r.status_code == 404


async def test_concurrent_http_uploads_refund_and_cancel(tmp_path: Path, db_url: str) -> None:
    async with flow(tmp_path, db_url) as f:
        http = f.csms.http
        await f.csms.add_charger("CC1")
        carol = await f.driver("carol@example.org", 10_000)
        key = generate_key()
        await http.put(
            "/api/v1/admin/chargers/CC1/settlement-key", json={"jwk": key.public.to_jwk()}
        )
        orders = []
        for _ in range(2):
            r = await http.post(
                "/api/v1/orders", json={"charger_id": "CC1", "evse_id": 1, "amount": 2000},
                headers=carol,
            )  # fmt: skip
            assert r.status_code == 201, r.text
            orders.append(r.json())
        paid, cancelled = orders
        auth = read_start_token(paid["start_token"])
        assert isinstance(auth, StartAuthorization)
        token = settle(
            auth, key, txn="1", start=auth.issued_at + 30, wh=10_000, seq=1, clock=f.clock
        )
        answers = await asyncio.gather(
            *(
                http.post("/api/v1/settlements", json={"token": token}, headers=carol)
                for _ in range(16)
            )
        )
        assert {a.status_code for a in answers} == {200}
        assert len({a.json()["payment_id"] for a in answers}) == 1
        payment_id = answers[0].json()["payment_id"]
        confirms = await asyncio.gather(
            *(http.post(f"/api/v1/payments/{payment_id}/confirm", headers=carol) for _ in range(8))
        )
        assert {c.status_code for c in confirms} == {200}
        assert len({c.json()["receipt_id"] for c in confirms}) == 1
        assert await f.balance(carol) == 10_000 - 1215 - 2000

        r = await http.post(f"/api/v1/admin/payments/{payment_id}/refunds", json={"amount": 215})
        assert r.status_code == 201 and r.json()["refunded_amount"] == 215
        again = await http.post(
            f"/api/v1/admin/payments/{payment_id}/refunds", json={"amount": 2000}
        )
        assert again.status_code == 409
        r = await http.post(f"/api/v1/admin/orders/{cancelled['id']}/cancel")
        assert r.status_code == 200 and r.json()["released"] == 2000
        r = await http.post(f"/api/v1/admin/orders/{paid['id']}/cancel")
        assert r.status_code == 409
        assert await f.balance(carol) == 10_000 - 1215 + 215
        payments = (await http.get("/api/v1/admin/payments")).json()
        assert [(p["status"], p["refunded_amount"]) for p in payments] == [("captured", 215)]

        # an expired order cannot be started remotely, and its token is refused at Authorize
        r = await http.post(
            "/api/v1/orders", json={"charger_id": "CC1", "amount": 500}, headers=carol
        )
        late = r.json()
        f.clock.advance(f.csms.ctx.settings.start_token_validity_s + 1)
        r = await http.post(f"/api/v1/orders/{late['id']}/remote-start", headers=carol)
        assert r.status_code == 409 and "expired" in r.json()["detail"]
        r = await http.post(f"/api/v1/orders/{paid['id']}/remote-start", headers=carol)
        assert r.status_code == 409 and "paid" in r.json()["detail"]
        f.clock.advance(f.csms.ctx.settings.token_leeway_s)
        decision = await f.csms.ctx.authorization.authorize("CC1", late["id"])
        assert decision.status == "Expired"


async def test_remote_start_limits_enforced_by_the_csms_16(tmp_path: Path, db_url: str) -> None:
    async with flow(tmp_path, db_url) as f:
        http = f.csms.http
        await f.csms.add_charger("RS16")
        dan = await f.driver("dan@example.org", 5000)
        r = await http.post(
            "/api/v1/orders", json={"charger_id": "RS16", "evse_id": 1, "amount": 100}, headers=dan
        )
        order = r.json()
        async with connect(f.csms.ws_url("RS16"), Client16, "ocpp1.6", basic_auth("RS16")) as cp:
            r = await http.post(f"/api/v1/orders/{order['id']}/remote-start", headers=dan)
            assert r.status_code == 200, r.text
            assert cp.received[-1] == ("RemoteStartTransaction", {"id_tag": order["id"],
                                                                  "connector_id": 1})  # fmt: skip
            t0 = f.clock.now
            start = await cp.call(
                call16.StartTransaction(
                    connector_id=1, id_tag=order["id"], meter_start=0, timestamp=ocpp_timestamp(t0)
                ),
                suppress=False,
            )
            assert start.id_tag_info["status"] == "Accepted"
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=start.transaction_id,
                    meter_value=[_register16(t0 + timedelta(minutes=5), 500)],
                ),
                suppress=False,
            )
            f.clock.advance(300)
            assert (await f.reaper.reap_once()).stopped == []  # 0.5 kWh: 0.60 < 1.00
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=start.transaction_id,
                    meter_value=[_register16(t0 + timedelta(minutes=10), 1000)],
                ),
                suppress=False,
            )
            f.clock.advance(300)
            assert (await f.reaper.reap_once()).stopped == [order["id"]]
            assert cp.received[-1] == (
                "RemoteStopTransaction", {"transaction_id": start.transaction_id}
            )  # fmt: skip
            assert (await f.reaper.reap_once()).stopped == []  # once
            await cp.call(
                call16.StopTransaction(
                    meter_stop=1010,
                    timestamp=ocpp_timestamp(t0 + timedelta(minutes=10)),
                    transaction_id=start.transaction_id,
                    reason="Remote",
                ),
                suppress=False,
            )
        r = await http.get(f"/api/v1/orders/{order['id']}", headers=dan)
        assert (r.json()["status"], r.json()["amount"]) == ("settled", 100)  # held to lim.amt
