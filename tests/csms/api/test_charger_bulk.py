"""The fleet import: chargers registered with argon2id hashes made elsewhere, all or none, and
only hashes as strong as the CSMS's own (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from ocpp.v16 import call as call16

from csms.passwords import hash_password

from ..clients import Client16, connect
from ..conftest import LiveCsms, basic_auth


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live(request: pytest.FixtureRequest) -> LiveCsms:
    name = "csms" if request.param == "sqlite" else "pg_csms"
    csms: LiveCsms = request.getfixturevalue(name)
    return csms


async def test_an_imported_fleet_connects_with_its_passwords(live: LiveCsms) -> None:
    hashed = hash_password("fleet-password-1")
    body = {"chargers": [{"id": f"B{n}", "password_hash": hashed, "evses": 2} for n in range(3)]}
    r = await live.http.post("/api/v1/admin/chargers/bulk", json=body)
    assert r.status_code == 201, r.text
    assert r.json() == {"created": 3}
    r = await live.http.get("/api/v1/admin/chargers/B2")
    assert [e["evse_id"] for e in r.json()["evses"]] == [1, 2]
    async with connect(
        live.ws_url("B1"), Client16, "ocpp1.6", basic_auth("B1", "fleet-password-1")
    ) as cp:
        await cp.call(call16.Heartbeat(), suppress=False)  # let in with the imported hash

    again = {
        "chargers": [{"id": "B9", "password_hash": hashed}, {"id": "B1", "password_hash": hashed}]
    }
    r = await live.http.post("/api/v1/admin/chargers/bulk", json=again)
    assert r.status_code == 409 and "B1" in r.text
    assert (await live.http.get("/api/v1/admin/chargers/B9")).status_code == 404  # none added


@pytest.mark.parametrize(
    ("password_hash", "problem"),
    [
        ("not-a-hash-at-all-but-long", "not an argon2"),
        (PasswordHasher(time_cost=1, memory_cost=19456).hash("pw"), "t >= 2"),
        (PasswordHasher(memory_cost=1024).hash("pw"), "m >= 19456"),
    ],
    ids=["malformed", "one-pass", "small-memory"],  # hashes are salted: xdist workers must agree
)
async def test_weak_or_malformed_hashes_are_refused(
    csms: LiveCsms, password_hash: str, problem: str
) -> None:
    body = {"chargers": [{"id": "W1", "password_hash": password_hash}]}
    r = await csms.http.post("/api/v1/admin/chargers/bulk", json=body)
    assert r.status_code == 422 and problem in r.text, r.text
    r = await csms.http.post(
        "/api/v1/admin/chargers/bulk",
        json={"chargers": [{"id": "W2", "password_hash": hash_password("x" * 8)}] * 2},
    )
    assert r.status_code == 422 and "repeated" in r.text
