"""The operator API behind the page's daily work: flagged orders filtered in the query (a page
of them is full however few orders are flagged), an operator's own password change (any
role, the current password checked and throttled, other tokens ended, never logged), and RFID
card numbers kept out of the audit log (masked in details, target and error text)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from csms.store.models_orders import Order, OrderFlag

from ..conftest import MoneyApi
from .operator_helpers import ADMIN, OPERATOR_PASSWORD, add_operator, operator, sign_in

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
NEW_PASSWORD = "another-password-34"


def _order(order_id: str, created_at: datetime) -> Order:
    return Order(
        id=order_id,
        user_id=1,
        charger_id="CP-F",
        evse_id=1,
        request_kind="amount",
        request_value=1000,
        tariff_claim='["T1", "CNY", 0, 10000, 0]',
        limits_claim="[1000]",
        hold_amount=1000,
        currency="CNY",
        start_token="x.y.z",
        kid="k",
        issued_at=created_at,
        expires_at=created_at + timedelta(minutes=15),
        created_at=created_at,
    )


async def _ids(api: MoneyApi, **params: Any) -> list[str]:
    r = await api.http.get(f"{ADMIN}/orders", params=params, headers=api.admin())
    assert r.status_code == 200, r.text
    return [o["id"] for o in r.json()]


async def test_flagged_orders_are_filtered_before_the_limit(api: MoneyApi) -> None:
    """Two flagged orders older than three plain ones: ``flagged=true&limit=2`` is both of
    them (filtering after the limit gave none: the latest two are not flagged)."""
    async with api.ctx.db.session() as session:
        for n in range(5):
            session.add(_order(f"ORD-{n}", T0 + timedelta(minutes=n)))
        await session.commit()
        session.add(OrderFlag(order_id="ORD-0", kind="debt", detail="settled after cancel"))
        session.add(OrderFlag(order_id="ORD-1", kind="late_settlement", detail=""))
        await session.commit()
    assert await _ids(api, flagged="true", limit=2) == ["ORD-1", "ORD-0"]
    assert await _ids(api, flagged="true", limit=1) == ["ORD-1"]
    assert await _ids(api, flagged="true", limit=1, offset=1) == ["ORD-0"]
    assert await _ids(api, flagged="false", limit=2) == ["ORD-4", "ORD-3"]
    assert await _ids(api, flagged="false", limit=5, offset=2) == ["ORD-2"]
    assert await _ids(api, limit=2, offset=4) == ["ORD-0"]


async def _audit(api: MoneyApi, actor: str) -> list[dict[str, Any]]:
    r = await api.http.get(f"{ADMIN}/audit", params={"actor": actor}, headers=api.admin())
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_any_role_changes_its_own_password_and_other_tokens_end(api: MoneyApi) -> None:
    for role in ("viewer", "operator", "admin"):
        name = f"self-{role}"
        await add_operator(api, name, role)
        here = await sign_in(api, name)
        elsewhere = await sign_in(api, name)
        r = await api.http.post(
            f"{ADMIN}/me/password",
            json={"current_password": OPERATOR_PASSWORD, "new_password": NEW_PASSWORD},
            headers=here,
        )
        assert r.status_code == 204, r.text
        assert (await api.http.get(f"{ADMIN}/me", headers=here)).status_code == 200
        assert (await api.http.get(f"{ADMIN}/me", headers=elsewhere)).status_code == 401
        old = await api.http.post(
            f"{ADMIN}/token", data={"username": name, "password": OPERATOR_PASSWORD}
        )
        assert old.status_code == 401
        await sign_in(api, name, NEW_PASSWORD)
        (entry,) = [i for i in await _audit(api, name) if i["action"].endswith("/me/password")]
        assert entry["status_code"] == 204 and entry["details"] == {"name": name}
        text = json.dumps(entry)
        assert OPERATOR_PASSWORD not in text and NEW_PASSWORD not in text


async def test_a_wrong_current_password_is_refused_and_throttled(api: MoneyApi) -> None:
    auth = await operator(api, "pat", "viewer")
    wrong = {"current_password": "not-the-password", "new_password": NEW_PASSWORD}
    for _ in range(api.settings.login_max_failures):
        r = await api.http.post(f"{ADMIN}/me/password", json=wrong, headers=auth)
        assert r.status_code == 401, r.text
        assert r.json()["detail"] == "the current password is wrong"
    right = {"current_password": OPERATOR_PASSWORD, "new_password": NEW_PASSWORD}
    r = await api.http.post(f"{ADMIN}/me/password", json=right, headers=auth)
    assert r.status_code == 429  # the right one too, or the answer would tell
    assert int(r.headers["retry-after"]) > 0
    api.clock.advance(api.settings.login_lockout_s + 1)
    r = await api.http.post(f"{ADMIN}/me/password", json=right, headers=auth)
    assert r.status_code == 204, r.text
    # the same account still signs in (its token stayed), with the new password only
    assert (await api.http.get(f"{ADMIN}/me", headers=auth)).status_code == 200
    await sign_in(api, "pat", NEW_PASSWORD)
    entries = [i for i in await _audit(api, "pat") if i["action"].endswith("/me/password")]
    assert [e["status_code"] for e in entries][:2] == [204, 429]
    assert all("not-the-password" not in json.dumps(e) for e in entries)


async def test_a_short_new_password_and_the_api_key_are_refused(api: MoneyApi) -> None:
    auth = await operator(api, "quinn", "operator")
    short = {"current_password": OPERATOR_PASSWORD, "new_password": "short"}
    r = await api.http.post(f"{ADMIN}/me/password", json=short, headers=auth)
    assert r.status_code == 422
    assert "short" not in json.dumps(await _audit(api, "quinn"))
    ok = {"current_password": OPERATOR_PASSWORD, "new_password": NEW_PASSWORD}
    r = await api.http.post(f"{ADMIN}/me/password", json=ok, headers=api.admin())
    assert r.status_code == 409
    r = await api.http.post(f"{ADMIN}/me/password", json=ok)
    assert r.status_code == 401


async def test_a_card_number_never_reaches_the_audit_log(api: MoneyApi) -> None:
    admin = await operator(api, "ada", "admin")
    viewer = await operator(api, "vic", "viewer")
    card = "04A1B2C3D4E5F6"
    r = await api.http.put(
        f"{ADMIN}/id-tags", json={"id_tag": card, "status": "Blocked"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert (await api.http.delete(f"{ADMIN}/id-tags/{card}", headers=viewer)).status_code == 403
    assert (await api.http.delete(f"{ADMIN}/id-tags/{card}", headers=admin)).status_code == 204
    gone = await api.http.delete(f"{ADMIN}/id-tags/{card}", headers=admin)
    assert gone.status_code == 404 and card not in gone.text
    short = await api.http.put(f"{ADMIN}/id-tags", json={"id_tag": "AB12"}, headers=admin)
    assert short.status_code == 200
    entries = await _audit(api, "ada") + await _audit(api, "vic")
    entries = [e for e in entries if "/id-tags" in e["action"]]
    assert len(entries) == 5
    for entry in entries:
        assert card not in json.dumps(entry), entry
        assert "AB12" not in json.dumps(entry), entry
    put, delete, missing = (
        next(
            e for e in entries if e["action"].startswith("PUT") and e["details"]["id_tag"] != "…12"
        ),
        next(e for e in entries if e["action"].startswith("DELETE") and e["status_code"] == 204),
        next(e for e in entries if e["status_code"] == 404),
    )
    assert put["details"]["id_tag"] == "…E5F6"
    assert delete["target"] == "id_tag=…E5F6"
    assert missing["target"] == "id_tag=…E5F6" and "no id tag …E5F6" in missing["detail"]
    refused = next(e for e in entries if e["status_code"] == 403)
    assert refused["target"] == "id_tag=…E5F6"
