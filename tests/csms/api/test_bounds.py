"""Every number a client sends is bounded and money is a strict integer: absurd values get a
422 naming the field, never a 500 from a database that cannot hold them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from csms.app import create_app

from ..conftest import LiveCsms, make_settings

HUGE = 10**30


def _unbounded_integers(tmp_path: Path) -> list[str]:
    spec = create_app(make_settings(tmp_path)).openapi()
    schemas = spec["components"]["schemas"]
    found: list[str] = []

    def walk(schema: dict[str, Any], where: str, seen: frozenset[str]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            if name not in seen:
                walk(schemas[name], where, seen | {name})
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for part in schema.get(key, []):
                walk(part, where, seen)
        if schema.get("type") == "integer" and (
            "maximum" not in schema
            or ("minimum" not in schema and "exclusiveMinimum" not in schema)
        ):
            found.append(where)
        for name, prop in schema.get("properties", {}).items():
            walk(prop, f"{where}.{name}", seen)
        if "items" in schema:
            walk(schema["items"], f"{where}[]", seen)

    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            for param in op.get("parameters", []):
                walk(
                    param["schema"],
                    f"{method.upper()} {path} {param['in']} {param['name']}",
                    frozenset(),
                )
            body = op.get("requestBody", {}).get("content", {})
            for content in body.values():
                walk(content.get("schema", {}), f"{method.upper()} {path} body", frozenset())
    return found


def test_every_integer_a_client_sends_has_bounds(tmp_path: Path) -> None:
    assert _unbounded_integers(tmp_path) == []


def _field_named(answer: dict[str, Any], field: str) -> bool:
    return any(error["loc"][-1] == field for error in answer["detail"])


@pytest.mark.parametrize("value", [1e30, HUGE, -1, 0, "100", True, 12.5, 2**63])
async def test_money_is_a_bounded_strict_integer(csms: LiveCsms, value: object) -> None:
    auth = await csms.driver()
    await csms.add_charger("CP1")
    top_up = await csms.http.post("/api/v1/me/wallet/top-ups", json={"amount": value}, headers=auth)
    assert top_up.status_code == 422 and _field_named(top_up.json(), "amount")
    order = await csms.http.post(
        "/api/v1/orders", json={"charger_id": "CP1", "amount": value}, headers=auth
    )
    assert order.status_code == 422 and _field_named(order.json(), "amount")
    me = (await csms.http.get("/api/v1/me", headers=auth)).json()
    assert me["balance"] == 0  # nothing was added, nothing held


@pytest.mark.parametrize("field", ["energy_wh", "duration_s", "evse_id"])
async def test_order_quantities_are_bounded(csms: LiveCsms, field: str) -> None:
    auth = await csms.driver()
    await csms.add_charger("CP1")
    for value in (HUGE, 1e30, "5"):
        r = await csms.http.post(
            "/api/v1/orders", json={"charger_id": "CP1", field: value}, headers=auth
        )
        assert r.status_code == 422 and _field_named(r.json(), field), (value, r.text)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/admin/wallets/{}",
        "/api/v1/admin/users/{}",
        "/api/v1/admin/transactions/{}",
        "/api/v1/admin/ledger?user_id={}",
        "/api/v1/admin/billing-assignments?user_id={}",
        "/api/v1/admin/chargers?offset={}",
        "/api/v1/payments/{}",
        "/api/v1/me/wallet/top-ups/{}",
        "/api/v1/receipts/{}",
        "/api/v1/settlements/{}",
    ],
)
async def test_ids_beyond_64_bits_are_refused_not_overflowed(csms: LiveCsms, path: str) -> None:
    auth = await csms.driver()
    for value in (HUGE, 2**63, -(2**63) - 1):
        r = await csms.http.get(path.format(value), headers=None if "admin" in path else auth)
        assert r.status_code == 422, (value, r.status_code, r.text)
    largest = await csms.http.get(path.format(2**63 - 1), headers=None if "admin" in path else auth)
    assert largest.status_code in (200, 404)
