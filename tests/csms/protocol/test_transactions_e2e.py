"""Transactions end to end: meter values, late offline starts, duplicates, both versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from qr_extension.wire import ocpp_timestamp

from ..clients import Client16, Client201, connect
from ..conftest import LiveCsms, basic_auth


def energy(at: datetime, wh: float, unit: str = "Wh", context: str | None = None) -> dict[str, Any]:
    sample: dict[str, Any] = {
        "value": str(wh),
        "measurand": "Energy.Active.Import.Register",
        "unit": unit,
    }
    if context:
        sample["context"] = context
    return {"timestamp": ocpp_timestamp(at), "sampled_value": [sample]}


async def _transactions(csms: LiveCsms, charger_id: str) -> list[dict[str, Any]]:
    r = await csms.http.get("/api/v1/admin/transactions", params={"charger_id": charger_id})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


async def _detail(csms: LiveCsms, pk: int) -> dict[str, Any]:
    r = await csms.http.get(f"/api/v1/admin/transactions/{pk}")
    assert r.status_code == 200, r.text
    detail: dict[str, Any] = r.json()
    return detail


async def test_transaction_16_with_meter_values_and_duplicates(csms: LiveCsms) -> None:
    await csms.add_charger("T16")
    await csms.http.put("/api/v1/admin/id-tags", json={"id_tag": "RFID1"})
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    start = call16.StartTransaction(
        connector_id=1, id_tag="RFID1", meter_start=1000, timestamp=ocpp_timestamp(t0)
    )
    async with connect(csms.ws_url("T16"), Client16, "ocpp1.6", basic_auth("T16")) as cp:
        first = await cp.call(start, suppress=False)
        again = await cp.call(start, suppress=False)
        assert first.id_tag_info["status"] == "Accepted"
        assert again.transaction_id == first.transaction_id
        txn = first.transaction_id
        # meter values out of order: the later sample arrives first
        for minutes in (2, 1):
            await cp.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=txn,
                    meter_value=[energy(t0 + timedelta(minutes=minutes), 1000 + minutes * 100)],
                ),
                suppress=False,
            )
        stop = call16.StopTransaction(
            meter_stop=1500,
            timestamp=ocpp_timestamp(t0 + timedelta(minutes=3)),
            transaction_id=txn,
            reason="EVDisconnected",
            transaction_data=[energy(t0 + timedelta(minutes=3), 1.5, unit="kWh")],
        )
        stopped = await cp.call(stop, suppress=False)
        stopped_again = await cp.call(stop, suppress=False)
        assert stopped == stopped_again
    rows = await _transactions(csms, "T16")
    assert len(rows) == 1
    row = rows[0]
    assert row["transaction_id"] == str(txn) and row["state"] == "Ended"
    assert (row["meter_start_wh"], row["meter_stop_wh"]) == (1000, 1500)
    assert row["stop_reason"] == "EVDisconnected" and row["flags"] == ""
    detail = await _detail(csms, row["id"])
    values = [(v["value"], v["unit"]) for v in detail["meter_values"]]
    assert values == [(1100.0, "Wh"), (1200.0, "Wh"), (1.5, "kWh")]  # time order, stored once


async def test_offline_start_16_hours_late_unknown_tag_is_stored(csms: LiveCsms) -> None:
    await csms.add_charger("OFF16")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    async with connect(csms.ws_url("OFF16"), Client16, "ocpp1.6", basic_auth("OFF16")) as cp:
        answer = await cp.call(
            call16.StartTransaction(
                connector_id=2, id_tag="ORDER42", meter_start=0, timestamp=ocpp_timestamp(t0)
            ),
            suppress=False,
        )
        await cp.call(
            call16.StopTransaction(
                meter_stop=7000,
                timestamp=ocpp_timestamp(t0 + timedelta(hours=1)),
                transaction_id=answer.transaction_id,
                id_tag="ORDER42",
            ),
            suppress=False,
        )
    assert answer.id_tag_info["status"] == "Invalid"  # truthful, but stored
    (row,) = await _transactions(csms, "OFF16")
    assert row["offline"] is True
    assert set(row["flags"].split(",")) == {"late_start", "unknown_tag"}
    assert row["started_at"].startswith(t0.strftime("%Y-%m-%dT%H:%M:%S"))
    assert row["meter_stop_wh"] == 7000 and row["state"] == "Ended"


async def test_stop_for_unknown_transaction_16_is_stored_not_refused(csms: LiveCsms) -> None:
    await csms.add_charger("U16")
    now = datetime.now(UTC)
    async with connect(csms.ws_url("U16"), Client16, "ocpp1.6", basic_auth("U16")) as cp:
        result = await cp.call(
            call16.StopTransaction(
                meter_stop=10, timestamp=ocpp_timestamp(now), transaction_id=987654
            ),
            suppress=False,
        )
    assert result is not None
    (row,) = await _transactions(csms, "U16")
    assert row["transaction_id"] == "unknown-987654" and row["flags"] == "unknown_transaction"


def _event(
    event_type: str, seq_no: int, at: datetime, wh: float, *, offline: bool = False, **extra: Any
) -> Any:
    context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(
        event_type, "Sample.Periodic"
    )
    return call201.TransactionEvent(
        event_type=event_type,
        timestamp=ocpp_timestamp(at),
        trigger_reason="CablePluggedIn" if event_type == "Started" else "MeterValuePeriodic",
        seq_no=seq_no,
        transaction_info={"transaction_id": "TX-1", **extra.pop("info", {})},
        offline=offline,
        meter_value=[
            {
                "timestamp": ocpp_timestamp(at),
                "sampled_value": [
                    {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"}
                ],
            }
        ],
        **extra,
    )


async def test_transaction_events_201_offline_duplicates_and_out_of_order(
    csms: LiveCsms,
) -> None:
    await csms.add_charger("T201", evses=1)
    await csms.http.put("/api/v1/admin/id-tags", json={"id_tag": "CARD-7"})
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    token = {"id_token": "CARD-7", "type": "ISO14443"}
    started = _event(
        "Started", 0, t0, 100, offline=True, id_token=token, evse={"id": 1, "connector_id": 1}
    )
    updated = _event("Updated", 1, t0 + timedelta(minutes=10), 900, offline=True)
    ended = _event(
        "Ended",
        2,
        t0 + timedelta(minutes=20),
        1600,
        offline=True,
        info={"stopped_reason": "EVDisconnected"},
    )
    async with connect(csms.ws_url("T201"), Client201, "ocpp2.0.1", basic_auth("T201")) as cp:
        # delivered out of order, and twice
        first_updated = await cp.call(updated, suppress=False)
        first_started = await cp.call(started, suppress=False)
        again_started = await cp.call(started, suppress=False)
        await cp.call(ended, suppress=False)
        await cp.call(ended, suppress=False)
        again_updated = await cp.call(updated, suppress=False)
    assert first_started.id_token_info == {"status": "Accepted"}
    assert again_started == first_started
    assert first_updated.id_token_info is None and again_updated == first_updated
    (row,) = await _transactions(csms, "T201")
    assert row["transaction_id"] == "TX-1" and row["ocpp_version"] == "2.0.1"
    assert row["state"] == "Ended" and row["offline"] is True
    assert (row["meter_start_wh"], row["meter_stop_wh"]) == (100, 1600)
    assert row["stop_reason"] == "EVDisconnected" and row["evse_id"] == 1
    assert row["started_at"].startswith(t0.strftime("%Y-%m-%dT%H:%M:%S"))
    assert row["id_tag"] == "CARD-7" and row["id_tag_status"] == "Accepted"
    detail = await _detail(csms, row["id"])
    assert [v["value"] for v in detail["meter_values"]] == [100.0, 900.0, 1600.0]


async def test_meter_values_201_attach_to_open_transaction(csms: LiveCsms) -> None:
    await csms.add_charger("MV201", evses=1)
    t0 = datetime.now(UTC).replace(microsecond=0)
    async with connect(csms.ws_url("MV201"), Client201, "ocpp2.0.1", basic_auth("MV201")) as cp:
        await cp.call(_event("Started", 0, t0, 5, evse={"id": 1}), suppress=False)
        await cp.call(
            call201.MeterValues(
                evse_id=1,
                meter_value=[
                    {
                        "timestamp": ocpp_timestamp(t0 + timedelta(seconds=30)),
                        "sampled_value": [
                            {"value": 2.5, "unit_of_measure": {"unit": "kWh", "multiplier": 0}},
                            {
                                "value": 7.2,
                                "measurand": "Power.Active.Import",
                                "unit_of_measure": {"unit": "kW"},
                            },
                        ],
                    }
                ],
            ),
            suppress=False,
        )
    (row,) = await _transactions(csms, "MV201")
    detail = await _detail(csms, row["id"])
    assert [(v["measurand"], v["value"]) for v in detail["meter_values"]] == [
        ("Energy.Active.Import.Register", 5.0),
        ("Energy.Active.Import.Register", 2.5),
        ("Power.Active.Import", 7.2),
    ]


@pytest.mark.postgres
async def test_server_on_postgresql(pg_csms: LiveCsms) -> None:
    """The same server on PostgreSQL: boot, a 2.0.1 transaction with a duplicate, the log."""
    csms = pg_csms
    await csms.add_charger("PG1", evses=1)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    async with connect(csms.ws_url("PG1"), Client201, "ocpp2.0.1", basic_auth("PG1")) as cp:
        await cp.call(
            call201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
            ),
            suppress=False,
        )
        for event in (
            _event("Started", 0, t0, 10, evse={"id": 1}),
            _event("Ended", 1, t0 + timedelta(minutes=5), 510),
            _event("Ended", 1, t0 + timedelta(minutes=5), 510),
        ):
            await cp.call(event, suppress=False)
        sync = await cp.call(
            call201.DataTransfer(vendor_id="org.qrcharge", message_id="Synced", data='{"seq": 2}'),
            suppress=False,
        )
    assert sync.status == "Accepted"
    (row,) = await _transactions(csms, "PG1")
    assert (row["meter_start_wh"], row["meter_stop_wh"], row["state"]) == (10, 510, "Ended")
    assert row["started_at"].startswith(t0.strftime("%Y-%m-%dT%H:%M:%S"))
    frames = (await csms.http.get("/api/v1/admin/chargers/PG1/messages")).json()
    assert len(frames) >= 10
