"""The HTTP API fuzzed from its own OpenAPI document with schemathesis.

Every operation of ``/openapi.json`` gets a fixed number of generated requests (valid and
invalid ones, from a fixed seed, so a failure comes back on the next run) sent to a live CSMS
on 127.0.0.1, authenticated as the operator or as a driver as the operation's security asks.
Each answer must not be a 5xx, must have a status the document declares for that operation,
and must match the schema declared for that status.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from csms.app import create_app
from qr_extension import jws
from qr_extension.keys import SigningKey, generate_key
from qr_extension.refusal import Refusal
from qr_extension.settlement import (
    SETTLE_TYP,
    build_settlement,
    sign_settlement,
    verify_settlement,
)
from qr_extension.start import StartAuthorization, read_start_token
from qr_extension.tariff import UsageBucket

from ..conftest import ADMIN_KEY, make_settings
from ..ocpp_fuzz import JSON, TEXT, settlement_like
from ..threaded import ThreadedCsms, threaded_csms

EXAMPLES_PER_OPERATION = 25
SEED = 20240613
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
DRIVER = {"email": "fuzz@example.org", "password": "fuzz-password-1"}
# Operations that may end the driver's access token (or disable the driver): after one of
# them succeeded, the driver is enabled again and signs in again.
REVOKING = {
    "POST /api/v1/me/sign-out",
    "POST /api/v1/admin/users/{user_id}/sign-out",
    "PATCH /api/v1/admin/users/{user_id}",
}

# The document the app serves (test_the_fuzzed_document_is_the_served_one checks that);
# building the app touches no disk.
schema = schemathesis.openapi.from_dict(create_app(make_settings(Path("unused"))).openapi())
schema.config.generation.update(max_examples=EXAMPLES_PER_OPERATION, deterministic=True)
schema.config.seed = SEED
EXAMPLES_RUN: Counter[str] = Counter()


@dataclass
class Api:
    """The live CSMS and a signed-in driver."""

    csms: ThreadedCsms
    http: httpx.Client
    driver_id: int
    driver_token: str = ""
    real_settlement: str = ""  # of the driver's order, signed by CP1's pinned key

    def sign_in(self) -> None:
        """Enables the driver (a fuzzed PATCH may have disabled it) and signs in again."""
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        enabled = self.http.patch(
            f"/api/v1/admin/users/{self.driver_id}", json={"disabled": False}, headers=admin
        )
        assert enabled.status_code == 200, enabled.text
        token = self.http.post(
            "/api/v1/token", data={"username": DRIVER["email"], "password": DRIVER["password"]}
        )
        assert token.status_code == 200, token.text
        self.driver_token = token.json()["access_token"]

    def auth_for(self, case: schemathesis.Case[Any]) -> dict[str, str]:
        """The Authorization header the operation's security requirement asks for."""
        schemes = {
            name for need in case.operation.definition.raw.get("security", []) for name in need
        }
        if "HTTPBearer" in schemes:
            return {"Authorization": f"Bearer {ADMIN_KEY}"}
        if "OAuth2PasswordBearer" in schemes:
            return {"Authorization": f"Bearer {self.driver_token}"}
        return {}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A CSMS with a charger, a billing model, a driver with money and an order (so that
    some generated ids exist)."""
    data = tmp_path_factory.mktemp("fuzz-http")
    # the fuzzer signs in with random passwords and uploads settlements hundreds of times a
    # minute: no lock-out and no upload rate here
    unlimited = {
        "login_max_failures": 10**9,
        "upload_rate_per_driver": 0,
        "upload_rate_per_client": 0,
    }
    with threaded_csms(make_settings(data, **unlimited)) as csms:
        with httpx.Client(base_url=csms.base_url, timeout=30) as http:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            charger = {"id": "CP1", "password": "fuzz-charger-pw", "evses": 2}
            assert http.post("/api/v1/admin/chargers", json=charger, headers=admin).is_success
            user = http.post("/api/v1/users", json=DRIVER)
            assert user.status_code == 201, user.text
            model = {"id": "m", "currency": "EUR", "energy_price": 1}
            assert http.post("/api/v1/admin/billing-models", json=model, headers=admin).is_success
            api = Api(csms, http, user.json()["id"])
            api.sign_in()
            driver = {"Authorization": f"Bearer {api.driver_token}"}
            top_up = http.post("/api/v1/me/wallet/top-ups", json={"amount": 5000}, headers=driver)
            assert top_up.status_code == 201, top_up.text
            order = http.post(
                "/api/v1/orders",
                json={"charger_id": "CP1", "evse_id": 1, "amount": 1000},
                headers=driver,
            )
            assert order.status_code == 201, order.text
            api.real_settlement = _settlement_of(order.json()["start_token"])
            jwk = {"jwk": CHARGER_KEY.public.to_jwk()}
            pinned = http.put("/api/v1/admin/chargers/CP1/settlement-key", json=jwk, headers=admin)
            assert pinned.status_code == 200, pinned.text
            yield api
        assert csms.take_tracebacks() == []
    print("\nHTTP fuzz examples per operation or target:", dict(sorted(EXAMPLES_RUN.items())))
    print("HTTP fuzz examples in all:", EXAMPLES_RUN.total())


def test_the_fuzzed_document_is_the_served_one(api: Api) -> None:
    assert api.http.get("/openapi.json").json() == schema.raw_schema


# a settlement whose (unverified) kid is a lone surrogate, as JSON may spell it
SURROGATE_KID = (
    "eyJhbGciOiJFUzI1NiIsInR5cCI6InNldHRsZStqd3QiLCJraWQiOiJcdWQ4MDAifQ.eyJpc3MiOiJDUDEifQ."
)
OVERLAP = [
    {"start_minute": 0, "end_minute": 600, "energy_price": 1, "time_price": 0},
    {"start_minute": 300, "end_minute": 900, "energy_price": 2, "time_price": 0},
]
# What the fuzzers found (statuses and bodies the document did not declare; a 500), kept as plain
# cases: (method, path template, path parameters, how to call, the status it answers).
FOUND: list[tuple[str, str, dict[str, str], dict[str, object], int]] = [
    ("GET", "/api/v1/admin/keys", {}, {"headers": {"Authorization": ""}}, 401),
    ("GET", "/metrics", {}, {"headers": {"Authorization": "Bearer wrong"}}, 401),
    ("GET", "/api/v1/admin/chargers/{charger_id}", {"charger_id": "nope"}, {}, 404),
    ("POST", "/api/v1/admin/chargers", {}, {"json": {"id": "CP1", "password": "x" * 12}}, 409),
    (
        "POST",
        "/api/v1/users",
        {},
        {"content": b'{"email": "\xc3"}', "headers": {"Content-Type": "application/json"}},
        400,
    ),
    (
        "POST",
        "/api/v1/token",
        {},
        {"data": {"username": "fuzz@example.org", "password": "wrong-pw"}},
        401,
    ),
    ("POST", "/api/v1/me/wallet/top-ups", {}, {"json": {"amount": 10**9}}, 422),
    (
        "POST",
        "/api/v1/orders",
        {},
        {"json": {"charger_id": "CP1", "amount": 1, "energy_wh": 1}},
        422,
    ),
    ("POST", "/api/v1/orders", {}, {"json": {"charger_id": "CP1", "amount": 10**7}}, 402),
    ("GET", "/api/v1/orders/{order_id}", {"order_id": "nope"}, {}, 404),
    ("GET", "/api/v1/chargers/{charger_id}", {"charger_id": "nope"}, {}, 404),
    ("POST", "/api/v1/settlements", {}, {"json": {"token": "not.a.settlement"}}, 422),
    ("POST", "/api/v1/settlements", {}, {"json": {"token": SURROGATE_KID}}, 422),
    (
        "PUT",
        "/api/v1/admin/billing-models/{model_id}",
        {"model_id": "m"},
        {"json": {"currency": "EUR", "tou": OVERLAP}},
        422,
    ),
    (
        "POST",
        "/api/v1/admin/billing-models/{model_id}/assignments",
        {"model_id": "m"},
        {"json": {"site": "s", "charger_id": "CP1"}},
        422,
    ),
]


@pytest.mark.parametrize(("method", "path", "params", "request_", "expected"), FOUND)
def test_what_the_fuzzer_found_is_documented(
    api: Api,
    method: str,
    path: str,
    params: dict[str, str],
    request_: dict[str, object],
    expected: int,
) -> None:
    case = schema[path][method].Case(path_parameters=params)
    given = dict(request_)
    headers = {**api.auth_for(case), **given.pop("headers", {})}  # type: ignore[dict-item]
    response = api.http.request(method, path.format(**params), headers=headers, **given)  # type: ignore[arg-type]
    assert response.status_code == expected, response.text
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_answers_as_documented(case: schemathesis.Case[Any], api: Api) -> None:
    EXAMPLES_RUN[case.operation.label] += 1
    response = case.call(base_url=api.csms.base_url, headers=api.auth_for(case))
    if case.operation.label in REVOKING and response.status_code < 300:
        api.sign_in()
    case.validate_response(response, checks=CHECKS)


# --- settlement tokens: POST /api/v1/settlements {"token"} and photos --------------------------

CHARGER_KEY = generate_key()
SETTLEMENT_EXAMPLES = 250


def _settlement_of(start_token: str) -> str:
    """A valid settlement of the order whose start token this is: 1 kWh in one minute."""
    auth = read_start_token(start_token)
    assert isinstance(auth, StartAuthorization)
    start = auth.issued_at + 1
    settlement = build_settlement(
        auth,
        audience="qrcharge",
        transaction_id="1",
        started_at=start,
        stopped_at=start + 60,
        meter_start_wh=0,
        meter_stop_wh=1000,
        usage=[UsageBucket(0, 1000, 60, 0)],
        reason="EVDisconnected",
        seq=1,
        offline=True,
        issued_at=start + 60,
    )
    return sign_settlement(settlement, CHARGER_KEY)


@st.composite
def signed_variants(draw: st.DrawFn, real: str) -> str:
    """The real settlement's claims with one member replaced, dropped or added, signed by the
    charger's pinned key: every check after the signature gets its turn."""
    claims = dict(jws.inspect(real)[1])
    name = draw(st.sampled_from(sorted(claims)))
    how = draw(st.sampled_from(["replace", "drop", "add"]))
    if how == "replace":
        claims[name] = draw(st.one_of(JSON, _near(claims[name])))
    elif how == "drop":
        del claims[name]
    else:
        claims[draw(TEXT)] = draw(JSON)
    return sign_any(claims, CHARGER_KEY)


def _near(value: Any) -> st.SearchStrategy[Any]:
    """Values of the same type as a claim, some close to it (the checks of ranges, sums, the
    order's charger, EVSE and tariff, and the time window get their turn)."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.one_of(st.integers(value - 100_000, value + 100_000), st.integers(-1, 2**53))
    if isinstance(value, str):
        return st.one_of(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", max_size=24), st.just(""))
    bucket = st.lists(st.integers(-1, 100_000), min_size=3, max_size=5)
    return st.lists(bucket, max_size=4)


def sign_any(claims: dict[str, Any], key: SigningKey) -> str:
    """``claims`` of any shape as a settlement JWS signed by ``key`` (PyJWT's encoder would
    refuse some of them: its JWS layer signs any bytes)."""
    payload = json.dumps(claims).encode()
    headers = {"typ": SETTLE_TYP, "kid": key.kid}
    return jwt.api_jws.encode(payload, key.key, algorithm="ES256", headers=headers)


def tokens(real: str) -> st.SearchStrategy[str]:
    """Anything a driver's phone might send as a settlement."""
    return st.one_of(
        TEXT,
        settlement_like("CP1"),
        signed_variants(real),
        st.builds(lambda t, at: t[:at] + "A" + t[at + 1 :], st.just(real), st.integers(0, 300)),
        st.builds(
            lambda c: jws.sign(c, generate_key(), typ=SETTLE_TYP), st.just(jws.inspect(real)[1])
        ),
    )


def _check_refusal(api: Api, response: httpx.Response, sent: object) -> None:
    """A settlement upload is answered as documented, and a refusal has its reason."""
    assert response.status_code in (200, 202, 409, 422), (sent, response.text)
    response.request.read()  # a streamed (multipart) body, for the report of a failure
    case = schema["/api/v1/settlements"]["POST"].Case()
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        detail = response.json()["detail"]
        assert detail["reason"] and detail["message"], (sent, detail)
    assert api.csms.take_tracebacks() == [], sent


@settings(
    max_examples=SETTLEMENT_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_settlement_token_is_refused_with_a_reason_or_settles(
    api: Api, data: st.DataObject
) -> None:
    token = data.draw(tokens(api.real_settlement), label="token")
    EXAMPLES_RUN["settlement tokens"] += 1
    headers = {"Authorization": f"Bearer {api.driver_token}"}
    body = json.dumps({"token": token})  # ASCII: a lone surrogate travels as its escape
    headers["Content-Type"] = "application/json"
    response = api.http.post("/api/v1/settlements", content=body, headers=headers)
    _check_refusal(api, response, token)
    if response.status_code < 300:  # accepted: then it is a settlement the core verifies
        verified = verify_settlement(token, key=CHARGER_KEY.public, audience="qrcharge")
        assert not isinstance(verified, Refusal), (token, verified)


@settings(
    max_examples=SETTLEMENT_EXAMPLES // 2,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(image=st.one_of(st.binary(max_size=3000), st.just(b"\x89PNG\r\n\x1a\n" + bytes(64))))
def test_a_photo_of_anything_is_refused_with_a_reason(api: Api, image: bytes) -> None:
    EXAMPLES_RUN["settlement photos"] += 1
    headers = {"Authorization": f"Bearer {api.driver_token}"}
    files = {"image": ("photo.png", image, "image/png")}
    response = api.http.post("/api/v1/settlements", files=files, headers=headers)
    assert response.status_code == 422, response.text
    _check_refusal(api, response, image[:40])
