"""What the demo sets up, through the same public APIs an operator and a driver use.

Chargers are registered with the operator API, the demo driver registers and tops up like any
driver, and a personal billing model is assigned to them, so the page shows "your" tariff.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from demo.errors import ProvisionError
from demo.fleet import ChargerSpec

DEMO_EMAIL = "driver@demo.qrcharge.example"
DEMO_PASSWORD = "demo-driver-pass"
DEMO_TOP_UP = 20_000  # 200.00 CNY
DEMO_MODEL_ID = "DEMO-DRIVER"


@dataclass(frozen=True, slots=True)
class DemoDriver:
    email: str
    password: str
    user_id: int
    access_token: str


def personal_model(currency: str) -> dict[str, Any]:
    """The demo driver's own prices: 1.00/kWh, 0.20/hour, 2.00/hour idle after 10 min,
    capped at 50.00 (prices in 1/10,000, cap in minor units)."""
    return {
        "id": DEMO_MODEL_ID,
        "name": "Demo driver: member price",
        "currency": currency,
        "energy_price": 10_000,
        "time_price": 2_000,
        "idle_price": 20_000,
        "idle_grace_min": 10,
        "cap": 5_000,
    }


def _check(response: httpx.Response, what: str, *, ok: tuple[int, ...] = (200, 201)) -> Any:
    if response.status_code not in ok:
        raise ProvisionError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


async def trusted_keys(client: httpx.AsyncClient, path: Path) -> Path:
    """Writes the CSMS JWKS to ``path`` (the chargers' installation config)."""
    jwks = _check(await client.get("/.well-known/jwks.json"), "JWKS")
    await asyncio.to_thread(path.write_text, json.dumps(jwks))
    return path


async def register_chargers(
    client: httpx.AsyncClient, admin_key: str, specs: list[ChargerSpec]
) -> None:
    auth = {"Authorization": f"Bearer {admin_key}"}
    for spec in specs:
        body = {
            "id": spec.id,
            "password": spec.password,
            "location": spec.location,
            "evses": spec.evses,
        }
        response = await client.post("/api/v1/admin/chargers", json=body, headers=auth)
        if response.status_code == 409:  # a kept data dir: already registered
            continue
        _check(response, f"register charger {spec.id}")


async def demo_driver(
    client: httpx.AsyncClient, admin_key: str, *, currency: str, top_up: int = DEMO_TOP_UP
) -> DemoDriver:
    """Registers (or signs in) the demo driver, assigns the personal model, tops up once."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    created = await client.post(
        "/api/v1/users", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    )
    fresh = created.status_code == 201
    if not fresh:
        _check(created, "register the demo driver", ok=(409,))
    token = _check(
        await client.post(
            "/api/v1/token", data={"username": DEMO_EMAIL, "password": DEMO_PASSWORD}
        ),
        "sign in the demo driver",
    )["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    me = _check(await client.get("/api/v1/me", headers=bearer), "demo driver profile")
    if fresh:
        model = await client.post(
            "/api/v1/admin/billing-models", json=personal_model(currency), headers=auth
        )
        _check(model, "create the demo billing model", ok=(201, 409))
        assigned = await client.post(
            f"/api/v1/admin/billing-models/{DEMO_MODEL_ID}/assignments",
            json={"user_id": me["id"]},
            headers=auth,
        )
        _check(assigned, "assign the demo billing model", ok=(201, 409))
        _check(
            await client.post(
                "/api/v1/me/wallet/top-ups",
                json={"amount": top_up},
                headers={**bearer, "Idempotency-Key": "demo-initial-top-up"},
            ),
            "top up the demo wallet",
        )
    return DemoDriver(DEMO_EMAIL, DEMO_PASSWORD, int(me["id"]), token)
