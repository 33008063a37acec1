"""Billing models: operator CRUD and assignments over HTTP, and which one applies where."""

from __future__ import annotations

from typing import Any

import pytest

from csms.billing.resolve import billing_model_for, resolve
from csms.payments.tariffs import resolve_sync
from csms.store.units_of_work import in_worker
from qr_extension import Tariff, TouPeriod

from ..conftest import SQLITE_ONLY, MoneyApi

ADMIN = "/api/v1/admin"


def model(model_id: str, energy: int, **extra: Any) -> dict[str, Any]:
    return {"id": model_id, "name": model_id.title(), "currency": "CNY",
            "energy_price": energy, "time_price": 1000, **extra}  # fmt: skip


async def create(api: MoneyApi, body: dict[str, Any]) -> dict[str, Any]:
    r = await api.http.post(f"{ADMIN}/billing-models", json=body, headers=api.admin())
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def assign(api: MoneyApi, model_id: str, **target: Any) -> int:
    r = await api.http.post(
        f"{ADMIN}/billing-models/{model_id}/assignments", json=target, headers=api.admin()
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def energy_price(api: MoneyApi, charger_id: str, auth: dict[str, str] | None) -> int:
    r = await api.http.get(f"/api/v1/chargers/{charger_id}", headers=auth or {})
    assert r.status_code == 200, r.text
    return int(r.json()["billing_model"]["energy_price"])


async def test_crud_round_trip(api: MoneyApi) -> None:
    tou = [{"start_minute": 1320, "end_minute": 420, "energy_price": 6000, "time_price": 0}]
    created = await create(
        api,
        model(
            "night",
            15000,
            tou=tou,
            tz_offset_min=480,
            idle_price=20000,
            idle_grace_min=10,
            cap=8000,
        ),
    )
    assert created["version"] == 1 and created["tou"] == tou and created["cap"] == 8000
    assert created["price_scale"] == 10_000
    listed = (await api.http.get(f"{ADMIN}/billing-models", headers=api.admin())).json()
    assert [m["id"] for m in listed] == ["night"]
    update = model("night", 16000) | {"name": "Night v2"}
    del update["id"]
    r = await api.http.put(f"{ADMIN}/billing-models/night", json=update, headers=api.admin())
    assert r.status_code == 200
    assert r.json()["version"] == 2 and r.json()["energy_price"] == 16000
    assert r.json()["tou"] == [] and r.json()["cap"] is None  # PUT replaces every field
    shown = await api.http.get(f"{ADMIN}/billing-models/night", headers=api.admin())
    assert shown.json()["name"] == "Night v2"
    r = await api.http.delete(f"{ADMIN}/billing-models/night", headers=api.admin())
    assert r.status_code == 204
    r = await api.http.get(f"{ADMIN}/billing-models/night", headers=api.admin())
    assert r.status_code == 404 and r.json()["code"] == "billing_model_not_found"


@SQLITE_ONLY
async def test_operator_key_is_required(api: MoneyApi) -> None:
    r = await api.http.post(f"{ADMIN}/billing-models", json=model("x", 1))
    assert r.status_code == 401
    _, auth = await api.driver("d@example.org")
    r = await api.http.get(f"{ADMIN}/billing-models", headers=auth)
    assert r.status_code == 401


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"currency": "cny"}, "currency"),
        ({"energy_price": -1}, "energy_price"),
        ({"id": "has space"}, "id"),
        ({"id": "x" * 37}, "id"),
        ({"cap": 0}, "cap"),
        ({"idle_grace_min": 5}, "idle grace"),
        (
            {
                "tou": [
                    {"start_minute": 0, "end_minute": 600, "energy_price": 1, "time_price": 0},
                    {"start_minute": 500, "end_minute": 700, "energy_price": 1, "time_price": 0},
                ]
            },
            "overlap",
        ),
    ],
)
async def test_invalid_models_are_422(
    api: MoneyApi, change: dict[str, Any], complaint: str
) -> None:
    r = await api.http.post(
        f"{ADMIN}/billing-models", json=model("bad", 1) | change, headers=api.admin()
    )
    assert r.status_code == 422, r.text
    assert complaint in r.text


async def test_conflicts(api: MoneyApi) -> None:
    await create(api, model("gold", 9000))
    r = await api.http.post(f"{ADMIN}/billing-models", json=model("gold", 1), headers=api.admin())
    assert r.status_code == 409
    default_id = api.settings.default_tariff_id
    r = await api.http.post(
        f"{ADMIN}/billing-models", json=model(default_id, 1), headers=api.admin()
    )
    assert r.status_code == 409 and "default" in r.json()["detail"]
    uid, _ = await api.driver("g@example.org")
    assignment = await assign(api, "gold", user_id=uid)
    r = await api.http.post(
        f"{ADMIN}/billing-models/gold/assignments", json={"user_id": uid}, headers=api.admin()
    )
    assert r.status_code == 409 and r.json()["code"] == "assignment_exists"
    r = await api.http.delete(f"{ADMIN}/billing-models/gold", headers=api.admin())
    assert r.status_code == 409 and r.json()["code"] == "billing_model_in_use"
    r = await api.http.delete(f"{ADMIN}/billing-assignments/{assignment}", headers=api.admin())
    assert r.status_code == 204
    r = await api.http.delete(f"{ADMIN}/billing-models/gold", headers=api.admin())
    assert r.status_code == 204


@SQLITE_ONLY
@pytest.mark.parametrize(
    "target",
    [
        {},
        {"site": "A", "user_id": 1},
        {"user_id": 9999},
        {"charger_id": "NOPE"},
        {"site": ""},
    ],
)
async def test_invalid_assignments_are_422(api: MoneyApi, target: dict[str, Any]) -> None:
    await create(api, model("m", 1))
    r = await api.http.post(
        f"{ADMIN}/billing-models/m/assignments", json=target, headers=api.admin()
    )
    assert r.status_code == 422, r.text


async def same_in_the_order_unit(api: MoneyApi, users: list[int | None]) -> int:
    """The order's unit of work (database thread) resolves as the driver pages do, for every
    user at every charger; returns how many pairs it compared."""
    pairs = [(u, c) for u in users for c in ("CP1", "CP2", "CP3", "UNKNOWN")]
    for user_id, charger_id in pairs:
        async with api.ctx.db.session() as session:
            paged = await resolve(
                session, user_id=user_id, charger_id=charger_id, settings=api.settings
            )
        in_unit = await in_worker(
            api.ctx.db,
            lambda s, u=user_id, c=charger_id: resolve_sync(
                s, user_id=u, charger_id=c, settings=api.settings
            ),
        )
        assert in_unit == paged, (user_id, charger_id)
    return len(pairs)


async def test_precedence_driver_at_charger_then_driver_then_charger_then_site(
    api: MoneyApi,
) -> None:
    await api.add_charger("CP1", location="Depot")
    await api.add_charger("CP2", location="Depot")
    await api.add_charger("CP3")
    for name, price in (("pair", 1111), ("tier", 2222), ("cp", 3333), ("site", 4444)):
        await create(api, model(name, price))
    ann, ann_auth = await api.driver("ann@example.org")
    bob, bob_auth = await api.driver("bob@example.org")
    default = api.settings.default_tariff_energy

    assert await energy_price(api, "CP1", ann_auth) == default
    assert await same_in_the_order_unit(api, [ann, bob, None]) == 12
    await assign(api, "site", site="Depot")
    assert await energy_price(api, "CP1", ann_auth) == 4444
    assert await energy_price(api, "CP3", ann_auth) == default
    await assign(api, "cp", charger_id="CP1")
    assert await energy_price(api, "CP1", None) == 3333  # anonymous visitors too
    assert await same_in_the_order_unit(api, [ann, bob, None]) == 12
    assert await energy_price(api, "CP2", bob_auth) == 4444
    await assign(api, "tier", user_id=ann)
    assert await energy_price(api, "CP1", ann_auth) == 2222
    assert await energy_price(api, "CP3", ann_auth) == 2222
    await assign(api, "pair", user_id=ann, charger_id="CP1")
    # the same charger prices two drivers differently
    assert await energy_price(api, "CP1", ann_auth) == 1111
    assert await energy_price(api, "CP1", bob_auth) == 3333
    assert await energy_price(api, "CP2", ann_auth) == 2222
    assert await same_in_the_order_unit(api, [ann, bob, None]) == 12

    r = await api.http.get(
        f"{ADMIN}/billing-models/resolve",
        params={"charger_id": "CP2", "user_id": bob},
        headers=api.admin(),
    )
    assert r.json()["scope"] == "site:Depot" and r.json()["id"] == "site"
    listed = await api.http.get(
        f"{ADMIN}/billing-assignments", params={"user_id": ann}, headers=api.admin()
    )
    assert sorted(a["scope"] for a in listed.json()) == [f"user:{ann}", f"user:{ann}/charger:CP1"]


async def test_billing_model_for_gives_the_core_tariff(api: MoneyApi) -> None:
    await api.add_charger("CP9")
    tou = [{"start_minute": 0, "end_minute": 360, "energy_price": 5000, "time_price": 0}]
    await create(api, model("flex", 13000, tou=tou, cap=9000, tz_offset_min=60))
    await assign(api, "flex", charger_id="CP9")
    async with api.ctx.db.session() as session:
        tariff = await billing_model_for(
            session, user_id=None, charger_id="CP9", settings=api.settings
        )
        fallback = await billing_model_for(
            session, user_id=12345, charger_id="UNKNOWN", settings=api.settings
        )
    assert tariff == Tariff(
        id="flex", currency="CNY", energy_price=13000, time_price=1000,
        tou=(TouPeriod(0, 360, 5000, 0),), tz_offset_min=60, cap=9000,
    )  # fmt: skip
    assert fallback.id == api.settings.default_tariff_id
    assert fallback.cap is None  # default_tariff_cap = 0 means no cap
    default = (await api.http.get(f"{ADMIN}/billing-models/default", headers=api.admin())).json()
    assert default["energy_price"] == api.settings.default_tariff_energy
    assert default["cap"] is None
