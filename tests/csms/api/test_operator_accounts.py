"""Operator accounts: signing in and out, the accounts an admin manages, the throttle."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from ..conftest import SQLITE_ONLY, Clock, MoneyApi, make_settings, open_api
from .operator_helpers import ADMIN, OPERATOR_PASSWORD, add_operator, operator, sign_in


async def test_sign_in_answers_the_contract_and_the_token_works_like_the_key(
    api: MoneyApi,
) -> None:
    await add_operator(api, "Alice", "operator")  # names are lower-cased
    r = await api.http.post(
        f"{ADMIN}/token", data={"username": "ALICE", "password": OPERATOR_PASSWORD}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "name", "role", "expires_at"}
    assert body["token_type"] == "bearer"
    assert (body["name"], body["role"]) == ("alice", "operator")
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires - api.clock.now == timedelta(seconds=api.settings.operator_token_ttl_s)
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    me = await api.http.get(f"{ADMIN}/me", headers=auth)
    assert me.json() == {"name": "alice", "role": "operator", "kind": "user"}
    assert (await api.http.get(f"{ADMIN}/chargers", headers=auth)).status_code == 200
    key = await api.http.get(f"{ADMIN}/me", headers=api.admin())
    assert key.json() == {"name": "api_key", "role": "admin", "kind": "api_key"}


async def test_wrong_password_and_unknown_name_get_the_same_401(api: MoneyApi) -> None:
    await add_operator(api, "bob", "viewer")
    wrong = await api.http.post(f"{ADMIN}/token", data={"username": "bob", "password": "x" * 12})
    unknown = await api.http.post(
        f"{ADMIN}/token", data={"username": "nobody", "password": OPERATOR_PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "incorrect name or password"}
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_the_token_expires(api: MoneyApi) -> None:
    auth = await operator(api, "carol", "viewer")
    api.clock.advance(api.settings.operator_token_ttl_s - 1)
    assert (await api.http.get(f"{ADMIN}/me", headers=auth)).status_code == 200
    api.clock.advance(1)
    assert (await api.http.get(f"{ADMIN}/me", headers=auth)).status_code == 401


async def test_sign_out_ends_only_the_current_token(api: MoneyApi) -> None:
    await add_operator(api, "dave", "operator")
    laptop = await sign_in(api, "dave")
    phone = await sign_in(api, "dave")
    r = await api.http.post(f"{ADMIN}/sign-out", headers=laptop)
    assert r.status_code == 204
    assert (await api.http.get(f"{ADMIN}/me", headers=laptop)).status_code == 401
    assert (await api.http.get(f"{ADMIN}/me", headers=phone)).status_code == 200
    # the API key cannot be signed out
    assert (await api.http.post(f"{ADMIN}/sign-out", headers=api.admin())).status_code == 204
    assert (await api.http.get(f"{ADMIN}/me", headers=api.admin())).status_code == 200


async def test_disabling_ends_every_token_and_sign_in(api: MoneyApi) -> None:
    await add_operator(api, "erin", "operator")
    one, two = await sign_in(api, "erin"), await sign_in(api, "erin")
    r = await api.http.patch(
        f"{ADMIN}/operators/erin", json={"disabled": True}, headers=api.admin()
    )
    assert r.status_code == 200 and r.json()["disabled"] is True
    for auth in (one, two):
        assert (await api.http.get(f"{ADMIN}/me", headers=auth)).status_code == 401
    r = await api.http.post(
        f"{ADMIN}/token", data={"username": "erin", "password": OPERATOR_PASSWORD}
    )
    assert r.status_code == 401
    await api.http.patch(f"{ADMIN}/operators/erin", json={"disabled": False}, headers=api.admin())
    await sign_in(api, "erin")


async def test_a_new_password_ends_tokens_and_a_new_role_holds_at_once(api: MoneyApi) -> None:
    auth = await operator(api, "frank", "operator")
    r = await api.http.patch(
        f"{ADMIN}/operators/frank", json={"role": "viewer"}, headers=api.admin()
    )
    assert r.json()["role"] == "viewer"
    me = await api.http.get(f"{ADMIN}/me", headers=auth)
    assert me.json()["role"] == "viewer"
    r = await api.http.patch(
        f"{ADMIN}/operators/frank", json={"password": "another-long-pw"}, headers=api.admin()
    )
    assert r.status_code == 200
    assert (await api.http.get(f"{ADMIN}/me", headers=auth)).status_code == 401
    await sign_in(api, "frank", "another-long-pw")


async def test_accounts_are_listed_and_names_unique(api: MoneyApi) -> None:
    await add_operator(api, "gina", "admin")
    await add_operator(api, "hank", "viewer")
    r = await api.http.post(
        f"{ADMIN}/operators",
        json={"name": "GINA", "password": OPERATOR_PASSWORD, "role": "viewer"},
        headers=api.admin(),
    )
    assert r.status_code == 409
    listed = (await api.http.get(f"{ADMIN}/operators", headers=api.admin())).json()
    assert [(o["name"], o["role"], o["disabled"]) for o in listed] == [
        ("gina", "admin", False),
        ("hank", "viewer", False),
    ]
    assert "password_hash" not in listed[0]
    r = await api.http.patch(f"{ADMIN}/operators/nobody", json={}, headers=api.admin())
    assert r.status_code == 404


async def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(api: MoneyApi) -> None:
    await add_operator(api, "root", "admin")
    root = await sign_in(api, "root")
    for change in ({"disabled": True}, {"role": "operator"}):
        r = await api.http.patch(f"{ADMIN}/operators/root", json=change, headers=root)
        assert r.status_code == 409, r.text
        assert "last enabled admin" in r.json()["detail"]
    await add_operator(api, "second", "admin")
    r = await api.http.patch(f"{ADMIN}/operators/root", json={"role": "operator"}, headers=root)
    assert r.status_code == 200
    # root is an operator now: it cannot touch accounts any more
    r = await api.http.patch(f"{ADMIN}/operators/second", json={"disabled": True}, headers=root)
    assert r.status_code == 403
    r = await api.http.patch(
        f"{ADMIN}/operators/second", json={"disabled": True}, headers=api.admin()
    )
    assert r.status_code == 409
    # a disabled admin does not count: disabling the other admin is refused, not the other way
    assert (await api.http.get(f"{ADMIN}/me", headers=root)).json()["role"] == "operator"


@SQLITE_ONLY
async def test_bad_names_and_short_passwords_are_422(api: MoneyApi) -> None:
    for body in (
        {"name": "has space", "password": OPERATOR_PASSWORD, "role": "viewer"},
        {"name": "ok", "password": "short", "role": "viewer"},
        {"name": "ok", "password": OPERATOR_PASSWORD, "role": "root"},
        {"name": "x" * 65, "password": OPERATOR_PASSWORD, "role": "viewer"},
    ):
        r = await api.http.post(f"{ADMIN}/operators", json=body, headers=api.admin())
        assert r.status_code == 422, body


@SQLITE_ONLY
async def test_failed_sign_ins_are_throttled_per_name(api: MoneyApi) -> None:
    await add_operator(api, "ivy", "viewer")
    limit = api.settings.login_max_failures
    for _ in range(limit):
        r = await api.http.post(f"{ADMIN}/token", data={"username": "ivy", "password": "w" * 12})
        assert r.status_code == 401
    r = await api.http.post(
        f"{ADMIN}/token", data={"username": "ivy", "password": OPERATOR_PASSWORD}
    )
    assert r.status_code == 429  # the right password too, or the answer would tell
    assert int(r.headers["retry-after"]) > 0
    api.clock.advance(api.settings.login_lockout_s + 1)
    await sign_in(api, "ivy")
    # drivers' log-ins keep counts of their own
    r = await api.http.post("/api/v1/token", data={"username": "ivy", "password": "w" * 12})
    assert r.status_code == 401


async def test_an_empty_admin_key_turns_the_key_off_and_lets_nobody_in(
    tmp_path: Path, clock: Clock
) -> None:
    """An operator who empties admin_api_key (now that staff have accounts) must not open the
    operator API to requests without credentials, or with an empty bearer."""
    settings = make_settings(tmp_path, admin_api_key="")
    async with open_api(settings, clock) as opened:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
            r = await opened.http.get("/api/v1/admin/me", headers=headers)
            assert r.status_code == 401, (headers, r.text)
        r = await opened.http.post("/api/v1/admin/keys/rotate")
        assert r.status_code == 401
