"""The audit log: one record per state-changing operator request (success, failure, refusal,
the API key's), written centrally, with no secret of the request in it."""

from __future__ import annotations

from typing import Any

import pytest

from csms.api.deps import OperatorDep

from ..conftest import ADMIN_KEY, SQLITE_ONLY, MoneyApi
from .operator_helpers import ADMIN, OPERATOR_PASSWORD, add_operator, operator, sign_in


async def _log(api: MoneyApi, **params: Any) -> dict[str, Any]:
    r = await api.http.get(f"{ADMIN}/audit", params=params, headers=api.admin())
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_success_failure_and_refusal_are_recorded_with_who_and_when(api: MoneyApi) -> None:
    op = await operator(api, "olga", "operator")
    viewer = await operator(api, "vic", "viewer")
    api.clock.advance(60)
    charger = {"id": "CP-A1", "password": "charger-secret-9", "evses": 1}
    assert (await api.http.post(f"{ADMIN}/chargers", json=charger, headers=op)).status_code == 201
    assert (await api.http.post(f"{ADMIN}/orders/O-gone/cancel", headers=op)).status_code == 404
    r = await api.http.delete(f"{ADMIN}/chargers/CP-A1", headers=viewer)
    assert r.status_code == 403
    items = (await _log(api))["items"]
    refused, failed, created = items[0], items[1], items[2]
    assert created == {
        "id": created["id"],
        "at": api.clock.now.isoformat().replace("+00:00", "Z"),
        "actor": "olga",
        "actor_kind": "user",
        "action": f"POST {ADMIN}/chargers",
        "target": "",
        "status_code": 201,
        "detail": "create charger",
        "details": {
            "id": "CP-A1",
            "evses": 1,
            "security_profile": created["details"]["security_profile"],
        },
    }
    assert failed["action"] == f"POST {ADMIN}/orders/{{order_id}}/cancel"
    assert failed["target"] == "order_id=O-gone"
    assert failed["status_code"] == 404
    assert failed["detail"].startswith("cancel order; ") and "O-gone" in failed["detail"]
    assert (refused["actor"], refused["status_code"]) == ("vic", 403)
    assert refused["action"] == f"DELETE {ADMIN}/chargers/{{charger_id}}"
    assert refused["target"] == "charger_id=CP-A1"
    assert "needs the operator role" in refused["detail"]
    assert created["id"] < failed["id"] < refused["id"]


async def test_the_api_key_is_recorded_as_such(api: MoneyApi) -> None:
    await api.add_charger("CP-K1")
    r = await api.http.post(f"{ADMIN}/chargers/CP-K1/commands/Reset", json={}, headers=api.admin())
    assert r.status_code == 409
    items = (await _log(api, actor="api_key"))["items"]
    assert [(i["actor_kind"], i["action"], i["status_code"]) for i in items] == [
        ("api_key", f"POST {ADMIN}/chargers/{{charger_id}}/commands/{{action}}", 409),
        ("api_key", f"POST {ADMIN}/chargers", 201),
    ]
    assert items[0]["target"] == "charger_id=CP-K1, action=Reset"


async def test_reads_and_strangers_leave_no_record_sign_ins_do(api: MoneyApi) -> None:
    await add_operator(api, "sam", "viewer")
    auth = await sign_in(api, "sam")
    assert (await api.http.get(f"{ADMIN}/chargers", headers=auth)).status_code == 200
    assert (await api.http.post(f"{ADMIN}/chargers", json={})).status_code == 401
    forged = {"Authorization": "Bearer qrop_not-a-token"}
    assert (await api.http.post(f"{ADMIN}/keys/rotate", headers=forged)).status_code == 401
    wrong = {"username": "sam", "password": "wrong-password-1"}
    assert (await api.http.post(f"{ADMIN}/token", data=wrong)).status_code == 401
    made_up = {"username": "ghost", "password": "wrong-password-1"}
    assert (await api.http.post(f"{ADMIN}/token", data=made_up)).status_code == 401
    assert (await api.http.post(f"{ADMIN}/sign-out", headers=auth)).status_code == 204
    items = (await _log(api))["items"]
    assert [(i["actor"], i["action"], i["status_code"]) for i in items] == [
        ("sam", f"POST {ADMIN}/sign-out", 204),
        ("sam", f"POST {ADMIN}/token", 401),
        ("sam", f"POST {ADMIN}/token", 200),
        ("api_key", f"POST {ADMIN}/operators", 201),
    ]


async def test_no_password_or_secret_reaches_the_log(api: MoneyApi) -> None:
    secrets = ["charger-secret-77", "operator-secret-77", "new-operator-secret", "shhh-short"]
    await add_operator(api, "root", "admin", password=secrets[1])
    admin = await sign_in(api, "root", password=secrets[1])
    charger = {"id": "CP-S1", "password": secrets[0], "evses": 1}
    assert (
        await api.http.post(f"{ADMIN}/chargers", json=charger, headers=admin)
    ).status_code == 201
    r = await api.http.patch(
        f"{ADMIN}/operators/root", json={"password": secrets[2]}, headers=admin
    )
    assert r.status_code == 200
    # a refused body: the validation error would echo the password back; the log must not
    body = {"name": "x1", "password": secrets[3], "role": "viewer"}
    r = await api.http.post(f"{ADMIN}/operators", json=body, headers=api.admin())
    assert r.status_code == 422 and secrets[3] in r.text
    r = await api.http.put(
        f"{ADMIN}/chargers/CP-S1/presence-secret",
        json={"secret_hex": "ab" * 32},
        headers=api.admin(),
    )
    assert r.status_code == 200
    items = (await _log(api))["items"]
    text = repr(items)
    for secret in [*secrets, "ab" * 32, ADMIN_KEY, OPERATOR_PASSWORD]:
        assert secret not in text
    assert items[1]["detail"] == "create operator; invalid request: body.password"
    assert items[2]["detail"] == "update operator; new password"


async def test_pages_newest_first_and_by_actor(api: MoneyApi) -> None:
    op = await operator(api, "pat", "operator")
    for n in range(5):
        await api.http.post(f"{ADMIN}/orders/O-{n}/cancel", headers=op)
    first = await _log(api, limit=2, actor="pat")
    assert [i["target"] for i in first["items"]] == ["order_id=O-4", "order_id=O-3"]
    second = await _log(api, limit=2, actor="pat", before=first["next_before"])
    assert [i["target"] for i in second["items"]] == ["order_id=O-2", "order_id=O-1"]
    third = await _log(api, limit=2, actor="pat", before=second["next_before"])
    assert [i["target"] for i in third["items"]] == ["order_id=O-0", ""]  # and her sign-in
    last = await _log(api, limit=2, actor="pat", before=third["next_before"])
    assert last == {"items": [], "next_before": None}
    everyone = await _log(api, limit=50)
    assert everyone["next_before"] is None and len(everyone["items"]) == 7


@SQLITE_ONLY
async def test_every_role_reads_the_log(api: MoneyApi) -> None:
    viewer = await operator(api, "val", "viewer")
    r = await api.http.get(f"{ADMIN}/audit", headers=viewer)
    assert r.status_code == 200 and r.json()["items"][0]["actor"] == "val"
    assert (
        await api.http.get(f"{ADMIN}/audit", params={"limit": 501}, headers=viewer)
    ).status_code == 422


@SQLITE_ONLY
async def test_a_crash_is_recorded_as_500(api: MoneyApi) -> None:
    async def boom(_: OperatorDep) -> None:
        raise RuntimeError("a bug")

    api.app.add_api_route(f"{ADMIN}/boom/{{thing}}", boom, methods=["POST"])
    with pytest.raises(RuntimeError):
        await api.http.post(f"{ADMIN}/boom/T1", headers=api.admin())
    item = (await _log(api))["items"][0]
    assert (item["action"], item["target"], item["status_code"]) == (
        f"POST {ADMIN}/boom/{{thing}}",
        "thing=T1",
        500,
    )


async def test_a_read_only_post_leaves_no_record(api: MoneyApi) -> None:
    """A cost preview is a POST that changes nothing: no record, for any role or outcome;
    the next real change is recorded as usual."""
    viewer = await operator(api, "rita", "viewer")
    before = (await _log(api))["items"]
    sample = {"currency": "CNY", "fixed_fee": 20_000, "energy_price": 15_000, "time_price": 0}
    sample |= {"start": "2026-12-06T08:00:00Z", "charging_min": 60, "energy_wh": 10_000}
    for headers in (viewer, api.admin()):
        r = await api.http.post(f"{ADMIN}/billing-models/preview", json=sample, headers=headers)
        assert r.status_code == 200 and r.json()["total"] == 1700, r.text
    bad = await api.http.post(f"{ADMIN}/billing-models/preview", json={}, headers=viewer)
    assert bad.status_code == 422
    assert (await _log(api))["items"] == before
    await api.add_charger("CP-P1")
    assert (await _log(api))["items"][0]["action"] == f"POST {ADMIN}/chargers"
