"""An order's start is stored in the commit of its transaction (:class:`csms.ports.InlineStarts`):
when the settlement service's own units of work cannot run (under load, its connection pool
timed out), a start answered Accepted still leaves the order started, and neither the start nor
the updates of its transaction cost a unit of work of their own; the end still bills through
one. Real OCPP connections (the ocpp library's clients), SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from csms.payments import settlement_service
from qr_extension.wire import ocpp_timestamp

from ..clients import Client16, Client201, connect
from ..conftest import basic_auth
from .test_flow_e2e import Flow, flow


class PoolGone:
    """Stands in for ``in_worker`` of the settlement service: fails while ``down``, as the
    pool's timeout did under load; counts the units asked for."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real, self.down, self.asked = real, True, 0

    async def __call__(self, db: Any, unit: Callable[..., Any]) -> Any:
        self.asked += 1
        if self.down:
            raise TimeoutError("QueuePool limit of size 10 overflow 10 reached")
        return await self.real(db, unit)


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> PoolGone:
    gone = PoolGone(settlement_service.in_worker)
    monkeypatch.setattr(settlement_service, "in_worker", gone)
    return gone


async def _order(f: Flow, charger_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    await f.csms.add_charger(charger_id)
    auth = await f.driver(f"{charger_id.lower()}@example.org", 10_000)
    r = await f.csms.http.post(
        "/api/v1/orders", json={"charger_id": charger_id, "evse_id": 1, "amount": 3000},
        headers=auth,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json(), auth


async def _status(f: Flow, order: dict[str, Any], auth: dict[str, str]) -> str:
    r = await f.csms.http.get(f"/api/v1/orders/{order['id']}", headers=auth)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def test_a_16_start_marks_its_order_without_a_unit_of_work_of_its_own(
    tmp_path: Path, db_url: str, pool: PoolGone
) -> None:
    async with flow(tmp_path, db_url) as f:
        order, auth = await _order(f, "INL16")
        t0 = f.clock.now
        async with connect(f.csms.ws_url("INL16"), Client16, "ocpp1.6", basic_auth("INL16")) as cp:
            start = call16.StartTransaction(
                connector_id=1, id_tag=order["id"], meter_start=100, timestamp=ocpp_timestamp(t0)
            )
            answer = await cp.call(start, suppress=False)
            assert answer.id_tag_info["status"] == "Accepted"
            assert await _status(f, order, auth) == "started"  # before: still "created"
            again = await cp.call(start, suppress=False)  # a repeat: the same transaction
            assert again.transaction_id == answer.transaction_id
            assert pool.asked == 0
            pool.down = False
            stop = call16.StopTransaction(
                meter_stop=5_100,
                timestamp=ocpp_timestamp(t0 + timedelta(minutes=30)),
                transaction_id=answer.transaction_id,
                id_tag=order["id"],
            )
            await cp.call(stop, suppress=False)
        assert pool.asked == 1  # the end bills through the service
        assert await _status(f, order, auth) == "settled"


async def test_a_201_start_and_its_updates_mark_the_order_in_their_own_commits(
    tmp_path: Path, db_url: str, pool: PoolGone
) -> None:
    async with flow(tmp_path, db_url) as f:
        order, auth = await _order(f, "INL201")
        t0 = f.clock.now

        def event(kind: str, seq: int, **extra: Any) -> call201.TransactionEvent:
            at = t0 + timedelta(minutes=seq)
            context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}
            register = {
                "timestamp": ocpp_timestamp(at),
                "sampled_value": [
                    {"value": 100 + 1_000 * seq, "measurand": "Energy.Active.Import.Register",
                     "context": context.get(kind, "Sample.Periodic")}
                ],
            }  # fmt: skip
            return call201.TransactionEvent(
                event_type=kind,
                timestamp=ocpp_timestamp(at),
                meter_value=[register],
                trigger_reason="Authorized" if kind == "Started" else "MeterValuePeriodic",
                seq_no=seq,
                transaction_info={"transaction_id": "TX-INLINE-1", **extra},
                id_token={"id_token": order["id"], "type": "Central"},
                evse={"id": 1, "connector_id": 1},
            )

        url = f.csms.ws_url("INL201")
        async with connect(url, Client201, "ocpp2.0.1", basic_auth("INL201")) as cp:
            started = await cp.call(event("Started", 0), suppress=False)
            assert started.id_token_info["status"] == "Accepted"
            assert await _status(f, order, auth) == "started"
            for seq in (1, 2):
                await cp.call(event("Updated", seq), suppress=False)
            await cp.call(event("Started", 0), suppress=False)  # a retransmission
            assert pool.asked == 0
            pool.down = False
            ended = event("Ended", 3, stopped_reason="EVDisconnected")
            await cp.call(ended, suppress=False)
        assert pool.asked == 1
        assert await _status(f, order, auth) == "settled"


async def test_a_cancelled_order_started_all_the_same_still_goes_through_the_service(
    tmp_path: Path, db_url: str, pool: PoolGone
) -> None:
    """Not ``created``: the service's own unit does what only it knows (the flag)."""
    pool.down = False
    async with flow(tmp_path, db_url) as f:
        order, auth = await _order(f, "INLCAN")
        r = await f.csms.http.post(f"/api/v1/orders/{order['id']}/cancel", headers=auth)
        assert r.status_code == 200, r.text
        assert await _status(f, order, auth) == "cancelling"
        url = f.csms.ws_url("INLCAN")
        async with connect(url, Client16, "ocpp1.6", basic_auth("INLCAN")) as cp:
            start = call16.StartTransaction(
                connector_id=1, id_tag=order["id"], meter_start=0,
                timestamp=ocpp_timestamp(f.clock.now),
            )  # fmt: skip
            await cp.call(start, suppress=False)
        assert pool.asked == 1
        assert await _status(f, order, auth) == "started"
        detail = (await f.csms.http.get(f"/api/v1/admin/orders/{order['id']}")).json()
        assert "started_after_cancel" in {flag["kind"] for flag in detail["flags"]}, detail
