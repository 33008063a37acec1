"""Roles on the operator API: every route under /api/v1/admin takes exactly one role
dependency (the route walk below fails for a new route that forgets it), a viewer is refused
every state-changing one, and operators and admins get what their roles say."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from csms.api.audit import read_only
from csms.api.deps import ROLE_DEPENDENCIES
from csms.operators.roles import Role

from ..conftest import SQLITE_ONLY, MoneyApi
from .operator_helpers import ADMIN, operator

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
PUBLIC = {("POST", f"{ADMIN}/token")}  # signing in needs no role
# every role may end its own token and change its own password
OWN = {("POST", f"{ADMIN}/sign-out"), ("POST", f"{ADMIN}/me/password")}


def _calls(dependant: Dependant) -> list[Callable[..., object]]:
    found: list[Callable[..., object]] = []
    for sub in dependant.dependencies:
        if sub.call is not None:
            found.append(sub.call)
        found.extend(_calls(sub))
    return found


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every FastAPI route the app serves (an included router is walked into)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def admin_routes(api: MoneyApi) -> list[tuple[str, str, Role | None, bool]]:
    """(method, path template, the role it needs, whether it only reads) of every operator
    route: a GET, or another method on a route marked read-only (a POST that only computes)."""
    routes = []
    for route in _api_routes(api.app.routes):
        if not route.path.startswith(f"{ADMIN}/"):
            continue
        roles = [ROLE_DEPENDENCIES[c] for c in _calls(route.dependant) if c in ROLE_DEPENDENCIES]
        if read_only(route):
            assert "GET" not in route.methods, route.path  # the marker is for other methods
        for method in route.methods:
            reads = method == "GET" or read_only(route)
            if (method, route.path) in PUBLIC:
                assert roles == [], route.path
                routes.append((method, route.path, None, False))
            else:
                assert len(set(roles)) == 1, f"{method} {route.path} takes roles {roles}"
                assert 403 in route.responses, f"{method} {route.path} does not declare 403"
                routes.append((method, route.path, roles[0], reads))
    return routes


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", template)


@SQLITE_ONLY
async def test_every_operator_route_needs_a_role_and_a_viewer_may_change_nothing(
    api: MoneyApi,
) -> None:
    routes = admin_routes(api)
    writes = [
        (m, p)
        for m, p, role, reads in routes
        if m in WRITES and not reads and role is not None and (m, p) not in OWN
    ]
    assert len(writes) >= 20  # the walk found the routers
    assert all(role != "viewer" for m, p, role, _ in routes if (m, p) in writes)
    viewer = await operator(api, "vera", "viewer")
    for method, template in writes:
        r = await api.http.request(method, _concrete(template), json={}, headers=viewer)
        assert r.status_code == 403, f"{method} {template}: {r.status_code} {r.text}"
        detail = r.json()["detail"]
        assert "needs the" in detail and "'vera' has the viewer role" in detail
    # each refusal is in the audit log, as the viewer's, with the route's template
    log = await api.http.get(
        f"{ADMIN}/audit", params={"actor": "vera", "limit": 500}, headers=viewer
    )
    items = log.json()["items"]
    assert items[-1]["action"] == f"POST {ADMIN}/token"  # her sign-in came first
    assert sorted(i["action"] for i in items[:-1]) == sorted(f"{m} {p}" for m, p in writes)
    assert {i["status_code"] for i in items[:-1]} == {403}
    # ... and a viewer reads everything but the accounts, a read-only POST (a cost preview)
    # included, which leaves no record either
    reads = [(m, t, role) for m, t, role, reads in routes if reads]
    assert ("POST", f"{ADMIN}/billing-models/preview", "viewer") in reads
    for method, template, role in reads:
        r = await api.http.request(method, _concrete(template), json={}, headers=viewer)
        assert (r.status_code == 403) == (role == "admin"), f"{method} {template}: {r.status_code}"
    after = await api.http.get(
        f"{ADMIN}/audit", params={"actor": "vera", "limit": 500}, headers=viewer
    )
    assert after.json()["items"] == items


@SQLITE_ONLY
async def test_without_credentials_every_operator_route_is_401(api: MoneyApi) -> None:
    for method, template, role, _ in admin_routes(api):
        if role is None:
            continue
        r = await api.http.request(method, _concrete(template), json={})
        assert r.status_code == 401, f"{method} {template}"
        bad = await api.http.request(
            method, _concrete(template), json={}, headers={"Authorization": "Bearer qrop_forged"}
        )
        assert bad.status_code == 401, f"{method} {template}"


async def test_an_operator_runs_chargers_orders_and_refunds_but_not_money_rules_or_accounts(
    api: MoneyApi,
) -> None:
    op = await operator(api, "otto", "operator")
    charger = {"id": "CP-R1", "password": "charger-pass", "evses": 1}
    assert (await api.http.post(f"{ADMIN}/chargers", json=charger, headers=op)).status_code == 201
    r = await api.http.patch(f"{ADMIN}/chargers/CP-R1", json={"location": "bay 2"}, headers=op)
    assert r.status_code == 200
    r = await api.http.post(
        f"{ADMIN}/chargers/CP-R1/commands/Reset", json={"type": "Soft"}, headers=op
    )
    assert r.status_code == 409  # allowed; the charger is just not connected
    assert (await api.http.post(f"{ADMIN}/orders/O-none/cancel", headers=op)).status_code == 404
    r = await api.http.post(f"{ADMIN}/payments/1/refunds", json={"amount": 1}, headers=op)
    assert r.status_code == 404
    refused = [
        ("POST", f"{ADMIN}/billing-models", {"name": "x"}),
        ("POST", f"{ADMIN}/keys/rotate", None),
        ("PUT", f"{ADMIN}/id-tags", {"id_tag": "T1"}),
        ("PATCH", f"{ADMIN}/users/1", {"disabled": True}),
        ("PUT", f"{ADMIN}/chargers/CP-R1/presence-secret", None),
        ("POST", f"{ADMIN}/operators", {"name": "x", "password": "p" * 12, "role": "admin"}),
        ("GET", f"{ADMIN}/operators", None),
    ]
    for method, path, body in refused:
        r = await api.http.request(method, path, json=body, headers=op)
        assert r.status_code == 403, f"{method} {path}"
    assert (await api.http.delete(f"{ADMIN}/chargers/CP-R1", headers=op)).status_code == 204


async def test_an_admin_account_does_what_the_key_does(api: MoneyApi) -> None:
    admin = await operator(api, "ada", "admin")
    assert (await api.http.post(f"{ADMIN}/keys/rotate", headers=admin)).status_code == 200
    r = await api.http.post(
        f"{ADMIN}/operators",
        json={"name": "newbie", "password": "p" * 12, "role": "viewer"},
        headers=admin,
    )
    assert r.status_code == 201
    assert (await api.http.get(f"{ADMIN}/operators", headers=admin)).status_code == 200
