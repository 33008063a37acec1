"""The operator's cost preview of a sample session: the core's cost function, over HTTP."""

from __future__ import annotations

from typing import Any

from ..conftest import MoneyApi

PREVIEW = "/api/v1/admin/billing-models/preview"


def prices(**extra: Any) -> dict[str, Any]:
    return {"currency": "CNY", "fixed_fee": 20_000, "energy_price": 12_000,
            "time_price": 3_000, **extra}  # fmt: skip


async def test_a_sample_session_costs_what_the_core_computes(api: MoneyApi) -> None:
    # 2.00 + 10 kWh x 1.20 + 1 h x 0.30 = 14.30 CNY
    body = prices(start="2026-01-05T10:00:00Z", charging_min=60, energy_wh=10_000)
    r = await api.http.post(PREVIEW, json=body, headers=api.admin())
    assert r.status_code == 200, r.text
    assert r.json() == {"currency": "CNY", "fixed": "2", "energy": "12", "time": "0.3",
                        "idle": "0", "total": 1430, "capped": False}  # fmt: skip


async def test_time_of_use_idle_and_cap_apply(api: MoneyApi) -> None:
    # 22:00-07:00 local (UTC+8) costs 0.60/kWh and no time; charging 23:00-00:00 local,
    # then 30 min parked, 10 min free, 6.00/hour after: 2.00 + 6.00 + 0 + 2.00 = 10.00
    night = [{"start_minute": 1320, "end_minute": 420, "energy_price": 6_000, "time_price": 0}]
    sample = {"start": "2026-01-05T15:00:00Z", "charging_min": 60, "energy_wh": 10_000}
    body = prices(tou=night, tz_offset_min=480, idle_price=60_000, idle_grace_min=10,
                  idle_min=30, **sample)  # fmt: skip
    r = await api.http.post(PREVIEW, json=body, headers=api.admin())
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 1000 and r.json()["idle"] == "2"
    capped = await api.http.post(PREVIEW, json={**body, "cap": 500}, headers=api.admin())
    assert capped.json()["total"] == 500 and capped.json()["capped"] is True


async def test_bad_prices_and_bad_samples_are_refused(api: MoneyApi) -> None:
    sample = {"start": "2026-01-05T10:00:00Z", "charging_min": 60, "energy_wh": 1}
    overlap = [
        {"start_minute": 60, "end_minute": 180, "energy_price": 1, "time_price": 0},
        {"start_minute": 120, "end_minute": 240, "energy_price": 1, "time_price": 0},
    ]
    r = await api.http.post(PREVIEW, json=prices(tou=overlap, **sample), headers=api.admin())
    assert r.status_code == 422 and "overlap" in r.text
    negative = prices(**{**sample, "energy_wh": -1})
    r = await api.http.post(PREVIEW, json=negative, headers=api.admin())
    assert r.status_code == 422
    late = prices(**{**sample, "start": "9999-12-31T23:00:00Z", "charging_min": 120})
    r = await api.http.post(PREVIEW, json=late, headers=api.admin())
    assert r.status_code == 422 and "9999" in r.text
    assert (await api.http.post(PREVIEW, json=prices(**sample))).status_code == 401
