"""The HTTP API fuzzed from its own OpenAPI document with schemathesis.

Every operation of ``/openapi.json`` gets a fixed number of generated requests (valid and
invalid ones, from a fixed seed, so a failure comes back on the next run) sent to a live CSMS
on 127.0.0.1, authenticated as the operator or as a driver as the operation's security asks.
Each answer must not be a 5xx, must have a status the document declares for that operation,
and must match the schema declared for that status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from csms.app import create_app

from .conftest import ADMIN_KEY, make_settings
from .threaded import ThreadedCsms, threaded_csms

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
    # the fuzzer signs in with random passwords thousands of times: no lock-out here
    with threaded_csms(make_settings(data, login_max_failures=10**9)) as csms:
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
                "/api/v1/orders", json={"charger_id": "CP1", "amount": 1000}, headers=driver
            )
            assert order.status_code == 201, order.text
            yield api
        assert csms.tracebacks == []
    print("\nschemathesis examples per operation:", dict(sorted(EXAMPLES_RUN.items())))
    print("schemathesis examples in all:", EXAMPLES_RUN.total())


def test_the_fuzzed_document_is_the_served_one(api: Api) -> None:
    assert api.http.get("/openapi.json").json() == schema.raw_schema


# What the fuzzer found (statuses and bodies the document did not declare), kept as plain
# cases: (method, path template, path parameters, how to call, the status it answers).
OVERLAP = [
    {"start_minute": 0, "end_minute": 600, "energy_price": 1, "time_price": 0},
    {"start_minute": 300, "end_minute": 900, "energy_price": 2, "time_price": 0},
]
FOUND: list[tuple[str, str, dict[str, str], dict[str, object], int]] = [
    ("GET", "/api/v1/admin/keys", {}, {"headers": {"Authorization": ""}}, 401),
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
