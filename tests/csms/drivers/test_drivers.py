"""Driver accounts over HTTP: register, log in, profile, wallet and top-ups; token rules."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import jwt
import pytest

from config.settings import Settings
from csms.drivers.errors import TokenInvalid
from csms.drivers.tokens import SECRET_FILE, DriverTokens, load_or_create_secret
from csms.payments.provider import SandboxProvider

from ..conftest import DRIVER_PASSWORD as PASSWORD
from ..conftest import SQLITE_ONLY, Clock, MoneyApi, open_api


async def test_register_log_in_and_see_the_profile(api: MoneyApi) -> None:
    user = await api.register("Ann@Example.org")
    assert user["email"] == "ann@example.org" and isinstance(user["id"], int)
    assert "password" not in str(user) and "hash" not in str(user)
    auth = await api.login("ANN@example.org")  # emails compare case-insensitively
    r = await api.http.get("/api/v1/me", headers=auth)
    assert r.status_code == 200
    assert r.json() | {"created_at": None} == {
        "id": user["id"],
        "email": "ann@example.org",
        "created_at": None,
        "currency": "CNY",
        "balance": 0,
        "held": 0,
    }


async def test_duplicate_email_is_409(api: MoneyApi) -> None:
    await api.register("bob@example.org")
    r = await api.http.post(
        "/api/v1/users", json={"email": " BOB@example.org", "password": "another-pass"}
    )
    assert r.status_code == 409
    assert r.json()["code"] == "email_taken"


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"email": "no-at-sign.org", "password": PASSWORD}, "not an email address"),
        ({"email": "a@b", "password": PASSWORD}, "not an email address"),
        ({"email": "a b@c.org", "password": PASSWORD}, "not an email address"),
        ({"email": "c@example.org", "password": "short"}, "at least 8 characters"),
        ({"email": "c@example.org", "password": "x" * 129}, "at most 128 characters"),
        ({"email": "c@example.org", "password": " " * 10}, "only spaces"),
        ({"email": "c@example.org"}, "Field required"),
    ],
)
async def test_invalid_registrations_are_clear_422s(
    api: MoneyApi, body: dict[str, str], complaint: str
) -> None:
    r = await api.http.post("/api/v1/users", json=body)
    assert r.status_code == 422
    assert complaint in r.text


async def test_wrong_password_and_unknown_user_look_the_same(api: MoneyApi) -> None:
    await api.register("carl@example.org")
    wrong = await api.http.post(
        "/api/v1/token", data={"username": "carl@example.org", "password": "wrong-password"}
    )
    unknown = await api.http.post(
        "/api/v1/token", data={"username": "nobody@example.org", "password": "wrong-password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "detail": "incorrect email or password",
            "code": "invalid_credentials",
        }
    )
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_protected_routes_need_a_valid_token(api: MoneyApi) -> None:
    uid, auth = await api.driver("dora@example.org")
    assert (await api.http.get("/api/v1/me")).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await api.http.get("/api/v1/me", headers=bad)).status_code == 401
    token = auth["Authorization"].split()[1]
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(
        claims | {"sub": str(uid + 1)}, "a-guessed-secret-of-at-least-32-bytes!", algorithm="HS256"
    )
    r = await api.http.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    api.clock.advance(api.settings.driver_token_ttl_s + 1)
    r = await api.http.get("/api/v1/me", headers=auth)
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_token_rules_and_secret_file(tmp_path: Path) -> None:
    secret = load_or_create_secret(tmp_path / "keys")
    path = tmp_path / "keys" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(tmp_path / "keys") == secret  # stable across restarts
    tokens = DriverTokens(secret=secret, issuer="qrcharge", ttl_s=60)
    token = tokens.issue(7, now=1000)
    assert tokens.verify(token, now=1059) == 7
    with pytest.raises(TokenInvalid):
        tokens.verify(token, now=1060)
    other = DriverTokens(secret=secret, issuer="elsewhere", ttl_s=60)
    with pytest.raises(TokenInvalid):
        other.verify(token, now=1000)
    untyped = jwt.encode(
        {"iss": "qrcharge", "aud": "qrcharge:driver", "sub": "7", "iat": 1000, "exp": 2000},
        secret,
        algorithm="HS256",
    )
    with pytest.raises(TokenInvalid):  # typ at+jwt is required
        tokens.verify(untyped, now=1000)


async def test_top_ups_are_idempotent_by_header(api: MoneyApi) -> None:
    _, auth = await api.driver("erin@example.org")
    headers = auth | {"Idempotency-Key": "tap-1"}
    first = await api.http.post("/api/v1/me/wallet/top-ups", json={"amount": 2500}, headers=headers)
    again = await api.http.post("/api/v1/me/wallet/top-ups", json={"amount": 2500}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["transfer_id"] == again.json()["transfer_id"]
    assert again.json()["balance"] == 2500
    other = await api.http.post("/api/v1/me/wallet/top-ups", json={"amount": 100}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    no_key = await api.http.post("/api/v1/me/wallet/top-ups", json={"amount": 100}, headers=auth)
    assert no_key.json()["balance"] == 2600
    wallet = (await api.http.get("/api/v1/me/wallet", headers=auth)).json()
    assert wallet["balance"] == 2600 and wallet["held"] == 0
    assert [(line["kind"], line["amount"]) for line in wallet["lines"]] == [
        ("top_up", 100),
        ("top_up", 2500),
    ]


@SQLITE_ONLY
async def test_a_malformed_top_up_key_is_refused_not_taken_as_none(api: MoneyApi) -> None:
    """An empty key was a new key each time: the retry it was sent for added the money twice.
    The same rule as an order's key: 1 to 100 printable ASCII characters, else 422."""
    _, auth = await api.driver("gus@example.org")
    for key in ("", "tab\there"):
        r = await api.http.post(
            "/api/v1/me/wallet/top-ups",
            json={"amount": 100},
            headers=auth | {"Idempotency-Key": key},
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_key", (key, r.text)
    me = (await api.http.get("/api/v1/me", headers=auth)).json()
    assert me["balance"] == 0


@SQLITE_ONLY
async def test_top_up_refusals(api: MoneyApi) -> None:
    _, auth = await api.driver("finn@example.org")
    too_much = api.settings.max_top_up_amount + 1
    r = await api.http.post("/api/v1/me/wallet/top-ups", json={"amount": too_much}, headers=auth)
    assert r.status_code == 422
    for amount in (0, -5, 1.5, "ten"):
        r = await api.http.post("/api/v1/me/wallet/top-ups", json={"amount": amount}, headers=auth)
        assert r.status_code == 422
    declined = await api.http.post(
        "/api/v1/me/wallet/top-ups",
        json={"amount": 500, "method": "sandbox-decline"},
        headers=auth,
    )
    assert declined.status_code == 402 and declined.json()["code"] == "payment_declined"
    me = (await api.http.get("/api/v1/me", headers=auth)).json()
    assert me["balance"] == 0
    assert (await api.http.post("/api/v1/me/wallet/top-ups", json={"amount": 5})).status_code == 401


@SQLITE_ONLY
async def test_openapi_documents_the_driver_api(api: MoneyApi) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    for path in ("/api/v1/users", "/api/v1/token", "/api/v1/me", "/api/v1/me/wallet/top-ups",
                 "/api/v1/chargers/{charger_id}"):  # fmt: skip
        assert path in spec["paths"], path
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("flows", {}).get("password") for s in schemes.values())


async def test_operator_can_disable_a_driver(api: MoneyApi) -> None:
    uid, auth = await api.driver("gil@example.org")
    found = await api.http.get(
        "/api/v1/admin/users", params={"email": "GIL@example.org"}, headers=api.admin()
    )
    assert [u["id"] for u in found.json()] == [uid]
    r = await api.http.patch(
        f"/api/v1/admin/users/{uid}", json={"disabled": True}, headers=api.admin()
    )
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert (await api.http.get("/api/v1/me", headers=auth)).status_code == 401  # at once
    r = await api.http.post(
        "/api/v1/token", data={"username": "gil@example.org", "password": PASSWORD}
    )
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    await api.http.patch(
        f"/api/v1/admin/users/{uid}", json={"disabled": False}, headers=api.admin()
    )
    assert (await api.http.get("/api/v1/me", headers=auth)).status_code == 200
    assert (
        await api.http.get(f"/api/v1/admin/users/{uid + 9}", headers=api.admin())
    ).status_code == 404
    assert (await api.http.get("/api/v1/admin/users", headers=auth)).status_code == 401


async def test_top_ups_use_the_apps_payment_provider(
    money_settings: Settings, clock: Clock
) -> None:
    """A PSP adapter is plugged in with ``create_app(payment_provider=...)``."""
    psp = SandboxProvider(name="acme-psp")
    async with open_api(money_settings, clock, payment_provider=psp) as api:
        _, auth = await api.driver("hal@example.org")
        r = await api.http.post(
            "/api/v1/me/wallet/top-ups",
            json={"amount": 700},
            headers=auth | {"Idempotency-Key": "1"},
        )
        assert r.status_code == 201
        page = await api.http.get(
            "/api/v1/admin/ledger", params={"account": "psp:acme-psp"}, headers=api.admin()
        )
        assert page.json()["balance"] == -700
        assert len(psp._by_key) == 2  # authorize and capture, each under its own key


async def test_repeated_wrong_passwords_lock_the_log_in_for_a_while(api: MoneyApi) -> None:
    await api.register("erin@example.org")
    await api.register("fred@example.org")
    limit = api.settings.login_max_failures

    async def attempt(email: str, password: str = "wrong-password") -> httpx.Response:
        return await api.http.post("/api/v1/token", data={"username": email, "password": password})

    for _ in range(limit):
        assert (await attempt("erin@example.org")).status_code == 401
    locked = await attempt("Erin@Example.org", PASSWORD)  # even the right one, any spelling
    assert locked.status_code == 429 and locked.json()["code"] == "too_many_attempts"
    assert 0 < int(locked.headers["Retry-After"]) <= api.settings.login_lockout_s
    assert (await attempt("fred@example.org", PASSWORD)).status_code == 200  # others unaffected
    api.clock.advance(api.settings.login_lockout_s + 1)
    assert (await attempt("erin@example.org", PASSWORD)).status_code == 200


async def test_signing_out_everywhere_ends_every_token_issued_so_far(api: MoneyApi) -> None:
    uid, phone = await api.driver("gina@example.org")
    laptop = await api.login("gina@example.org")
    assert (await api.http.get("/api/v1/me", headers=laptop)).status_code == 200
    assert (await api.http.post("/api/v1/me/sign-out", headers=phone)).status_code == 204
    for old in (phone, laptop):
        r = await api.http.get("/api/v1/me", headers=old)
        assert r.status_code == 401 and "signed out" in r.json()["detail"]
    again = await api.login("gina@example.org")
    assert (await api.http.get("/api/v1/me", headers=again)).status_code == 200
    # the operator does the same for a lost phone; unknown ids are 404
    r = await api.http.post(f"/api/v1/admin/users/{uid}/sign-out", headers=api.admin())
    assert r.status_code == 204
    assert (await api.http.get("/api/v1/me", headers=again)).status_code == 401
    r = await api.http.post("/api/v1/admin/users/999999/sign-out", headers=api.admin())
    assert r.status_code == 404


def test_a_token_from_before_generations_counts_as_generation_zero() -> None:
    tokens = DriverTokens(secret=b"k" * 32, issuer="qrcharge", ttl_s=60)
    claims = jwt.decode(
        tokens.issue(7, now=1000, generation=3),
        b"k" * 32,
        algorithms=["HS256"],
        audience="qrcharge:driver",
        options={"verify_exp": False},
    )
    assert claims["gen"] == 3
    del claims["gen"]
    legacy = jwt.encode(claims, b"k" * 32, algorithm="HS256", headers={"typ": "at+jwt"})
    assert tokens.verify_access(legacy, now=1001) == (7, 0)
    forged_gen = jwt.encode(claims | {"gen": "3"}, b"k" * 32, algorithm="HS256",
                            headers={"typ": "at+jwt"})  # fmt: skip
    with pytest.raises(TokenInvalid):
        tokens.verify_access(forged_gen, now=1001)


def test_verified_tokens_are_remembered_boundedly_and_still_expire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from csms.drivers import tokens as token_module

    monkeypatch.setattr(token_module, "VERIFIED_CACHE", 3)
    tokens = DriverTokens(secret=b"s" * 32, issuer="qrcharge", ttl_s=60)
    issued = [tokens.issue(n, now=1000, generation=n % 2) for n in range(5)]
    assert [tokens.verify_access(t, now=1001) for t in issued] == [(n, n % 2) for n in range(5)]
    assert list(tokens._verified) == issued[2:]  # the oldest went first
    decode_calls: list[str] = []
    real_decode = jwt.decode
    monkeypatch.setattr(
        jwt, "decode", lambda *a, **k: decode_calls.append("x") or real_decode(*a, **k)
    )
    assert tokens.verify_access(issued[4], now=1030) == (4, 0)  # remembered: not decoded again
    assert decode_calls == []
    with pytest.raises(TokenInvalid, match="expired"):  # remembered, but its exp still counts
        tokens.verify_access(issued[4], now=1060)
