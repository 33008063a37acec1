"""The live session of a started order, ``GET /api/v1/orders/{id}`` -> ``live``: the energy so
far from the transaction's latest energy-register reading (per-phase samples and the EV's own
meter left out, kWh read as 1000 Wh), the cost so far with the order's tariff held to its
limit, and when that reading was taken; over a real OCPP connection (1.6 and 2.0.1), on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from csms.payments.limits import limit_hits
from qr_extension.wire import ocpp_timestamp

from ..clients import Client16, Client201, connect
from ..conftest import basic_auth
from .test_flow_e2e import Flow, flow

REGISTER = "Energy.Active.Import.Register"


def _samples(at: datetime, *values: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": ocpp_timestamp(at), "sampled_value": list(values)}


def _register(value: float, unit: str = "Wh", **extra: Any) -> dict[str, Any]:
    return {"value": value, "measurand": REGISTER, "unit": unit, **extra}


class Session16:
    """A 1.6 charger's session of one order: StartTransaction, then MeterValues."""

    def __init__(self, cp: Any, txn: str) -> None:
        self.cp = cp
        self.txn = 0  # the CSMS assigns it

    async def start(self, order_id: str, at: datetime, meter_wh: int) -> None:
        answer = await self.cp.call(
            call16.StartTransaction(
                connector_id=1, id_tag=order_id, meter_start=meter_wh, timestamp=ocpp_timestamp(at)
            ),
            suppress=False,
        )
        assert answer.id_tag_info["status"] == "Accepted"
        self.txn = answer.transaction_id

    async def meter(self, at: datetime, *values: dict[str, Any]) -> None:
        strings = [{**v, "value": str(v["value"])} for v in values]
        await self.cp.call(
            call16.MeterValues(
                connector_id=1, transaction_id=self.txn, meter_value=[_samples(at, *strings)]
            ),
            suppress=False,
        )

    async def stop(self, at: datetime, meter_wh: int) -> None:
        await self.cp.call(
            call16.StopTransaction(
                meter_stop=meter_wh, timestamp=ocpp_timestamp(at), transaction_id=self.txn
            ),
            suppress=False,
        )


class Session201:
    """The same on 2.0.1: TransactionEvent Started, Updated, Ended."""

    def __init__(self, cp: Any, txn: str) -> None:
        self.cp = cp
        self.txn = txn
        self.seq = 0

    async def _event(self, kind: str, at: datetime, **kw: Any) -> Any:
        event = call201.TransactionEvent(
            event_type=kind,
            timestamp=ocpp_timestamp(at),
            seq_no=self.seq,
            evse={"id": 1, "connector_id": 1},
            **kw,
        )
        self.seq += 1
        return await self.cp.call(event, suppress=False)

    async def start(self, order_id: str, at: datetime, meter_wh: int) -> None:
        begin = _register(meter_wh, context="Transaction.Begin")
        answer = await self._event(
            "Started", at, trigger_reason="Authorized",
            transaction_info={"transaction_id": self.txn},
            id_token={"id_token": order_id, "type": "Central"},
            meter_value=[_samples(at, _as201(begin))],
        )  # fmt: skip
        assert answer.id_token_info["status"] == "Accepted"

    async def meter(self, at: datetime, *values: dict[str, Any]) -> None:
        await self._event(
            "Updated", at, trigger_reason="MeterValuePeriodic",
            transaction_info={"transaction_id": self.txn},
            meter_value=[_samples(at, *map(_as201, values))],
        )  # fmt: skip

    async def stop(self, at: datetime, meter_wh: int) -> None:
        end = _register(meter_wh, context="Transaction.End")
        await self._event(
            "Ended", at, trigger_reason="EVDeparted",
            transaction_info={"transaction_id": self.txn, "stopped_reason": "EVDisconnected"},
            meter_value=[_samples(at, _as201(end))],
        )  # fmt: skip


def _as201(value: dict[str, Any]) -> dict[str, Any]:
    """2.0.1 names the unit in ``unitOfMeasure``."""
    sample = {k: v for k, v in value.items() if k != "unit"}
    if "unit" in value:
        sample["unit_of_measure"] = {"unit": value["unit"]}
    return sample


VERSIONS = {"1.6": (Client16, "ocpp1.6", Session16), "2.0.1": (Client201, "ocpp2.0.1", Session201)}


async def _order(f: Flow, auth: dict[str, str], charger: str, **request: Any) -> dict[str, Any]:
    r = await f.csms.http.post(
        "/api/v1/orders", json={"charger_id": charger, "evse_id": 1, **request}, headers=auth
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _live(f: Flow, order_id: str, auth: dict[str, str]) -> Any:
    r = await f.csms.http.get(f"/api/v1/orders/{order_id}", headers=auth)
    assert r.status_code == 200, r.text
    return r.json()["live"]


@pytest.mark.parametrize("version", list(VERSIONS))
async def test_a_started_order_shows_its_energy_and_cost_so_far(
    tmp_path: Path, db_url: str, version: str
) -> None:
    client, subprotocol, kind = VERSIONS[version]
    charger = "LIVE16" if version == "1.6" else "LIVE201"
    async with flow(tmp_path, db_url) as f:
        await f.csms.add_charger(charger)
        alice = await f.driver("alice@example.org", 10_000)
        order = await _order(f, alice, charger, amount=3000)
        capped = await _order(f, alice, charger, amount=300)
        assert await _live(f, order["id"], alice) is None  # created: nothing runs
        t0 = f.clock.now.replace(microsecond=0)
        async with connect(f.csms.ws_url(charger), client, subprotocol, basic_auth(charger)) as cp:
            session = kind(cp, "LIVE-1")
            await session.start(order["id"], t0, 500)
            # started, nothing metered yet: nothing so far (the tariff has no fixed fee)
            live = await _live(f, order["id"], alice)
            assert live == {"energy_wh": 0, "amount": 0, "read_at": live["read_at"]}
            assert datetime.fromisoformat(live["read_at"]) == t0

            t1 = t0 + timedelta(minutes=10)
            await session.meter(
                t1,
                _register(2.5, "kWh"),  # 2500 Wh on the register: 2000 Wh since the start
                _register(900, phase="L1"),  # a phase's share is not the session's energy
                _register(9999, location="EV"),  # the car's own meter is not the charger's
                {"value": 7200, "measurand": "Power.Active.Import", "unit": "W"},
            )
            live = await _live(f, order["id"], alice)
            # 2 kWh * 1.20 + 1/6 h * 0.30 = 2.45
            assert (live["energy_wh"], live["amount"]) == (2000, 245)
            assert datetime.fromisoformat(live["read_at"]) == t1

            t2 = t0 + timedelta(minutes=20)
            await session.meter(t2, _register(3500), _register(1200, phase="L2"))
            live = await _live(f, order["id"], alice)
            # 3 kWh * 1.20 + 1/3 h * 0.30 = 3.70
            assert (live["energy_wh"], live["amount"]) == (3000, 370)
            assert datetime.fromisoformat(live["read_at"]) == t2
            listed = (await f.csms.http.get("/api/v1/orders", headers=alice)).json()
            assert all(o["live"] is None for o in listed)  # one order's page only
            bob = await f.driver("bob@example.org", 0)
            r = await f.csms.http.get(f"/api/v1/orders/{order['id']}", headers=bob)
            assert r.status_code == 404

            await session.stop(t2 + timedelta(minutes=1), 3600)
            assert await _live(f, order["id"], alice) is None  # over: the settlement speaks

            session = kind(cp, "LIVE-2")
            await session.start(capped["id"], t2, 3600)
            await session.meter(t2 + timedelta(minutes=20), _register(3600 + 3000))
            live = await _live(f, capped["id"], alice)
            # 3.70 by the tariff, held to the order's limit of 3.00
            assert (live["energy_wh"], live["amount"]) == (3000, 300)


async def test_the_limit_watch_reads_the_whole_register_not_a_phase(
    tmp_path: Path, db_url: str
) -> None:
    """A remotely started order is stopped by the CSMS at its energy limit: a later per-phase
    sample (a third of the energy) does not hide that the whole register reached it."""
    async with flow(tmp_path, db_url) as f:
        await f.csms.add_charger("LIM16")
        alice = await f.driver("alice@example.org", 60_000)
        order = await _order(f, alice, "LIM16", energy_wh=1000)
        async with connect(f.csms.ws_url("LIM16"), Client16, "ocpp1.6", basic_auth("LIM16")) as cp:
            r = await f.csms.http.post(f"/api/v1/orders/{order['id']}/remote-start", headers=alice)
            assert r.status_code == 200, r.text
            session = Session16(cp, "")
            t0 = f.clock.now.replace(microsecond=0)
            await session.start(order["id"], t0, 500)
            t1 = t0 + timedelta(minutes=5)
            await session.meter(t1, _register(1300), _register(270, phase="L1"))
            await session.meter(t1 + timedelta(seconds=1), _register(290, phase="L1"))
            async with f.csms.ctx.db.session() as db:
                assert await limit_hits(db, now=t1) == []  # 800 Wh of 1000
            await session.meter(t1 + timedelta(seconds=2), _register(1500))
            await session.meter(t1 + timedelta(seconds=3), _register(330, phase="L1"))
            async with f.csms.ctx.db.session() as db:
                (hit,) = await limit_hits(db, now=t1)
            assert (hit.order_id, hit.reason) == (order["id"], "EnergyLimitReached")
            live = await _live(f, order["id"], alice)
            assert live["energy_wh"] == 1000
