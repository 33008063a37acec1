"""``POST /api/v1/orders`` with an ``Idempotency-Key``, over HTTP, on SQLite and PostgreSQL.

A repeat finds the order the first request placed (201 again, the order as ``GET`` shows it,
``Idempotent-Replayed: true``): one order, one hold, also when the requests race; the same key
for another request is 409; keys are per driver; a malformed key is 422. The ledger
invariants run when each test's app closes."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from csms.app import create_app
from csms.store import orders as store_orders
from csms.store.models_orders import Order

from ..conftest import SQLITE_ONLY, MoneyApi, make_settings

ORDERS = "/api/v1/orders"
ORDER = {"charger_id": "CP1", "evse_id": 1, "amount": 3000}


async def _driver(api: MoneyApi, email: str) -> dict[str, str]:
    _, auth = await api.driver(email, funds=10_000)
    return auth


async def _post(
    api: MoneyApi, auth: dict[str, str], key: str | bytes | None, body: dict[str, Any] = ORDER
) -> httpx.Response:
    headers: dict[str, Any] = dict(auth)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.http.post(ORDERS, json=body, headers=headers)


async def _wallet(api: MoneyApi, auth: dict[str, str]) -> tuple[int, int, list[str]]:
    """(available, held, the kinds of the wallet's transfers)."""
    wallet = (await api.http.get("/api/v1/me/wallet", headers=auth)).json()
    return wallet["balance"], wallet["held"], [line["kind"] for line in wallet["lines"]]


async def _order_ids(api: MoneyApi, auth: dict[str, str]) -> list[str]:
    return [o["id"] for o in (await api.http.get(ORDERS, headers=auth)).json()]


async def test_a_repeat_with_the_key_answers_the_same_order_and_holds_once(
    api: MoneyApi,
) -> None:
    await api.add_charger("CP1")
    alice = await _driver(api, "alice@example.org")
    first = await _post(api, alice, "tap-1")
    again = await _post(api, alice, "tap-1")
    assert first.status_code == again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    order = first.json()
    assert again.json() == order
    read = await api.http.get(f"{ORDERS}/{order['id']}", headers=alice)
    assert again.json() == read.json()
    assert await _order_ids(api, alice) == [order["id"]]
    assert await _wallet(api, alice) == (7000, 3000, ["hold", "top_up"])

    # the repeat answers the order as it stands now
    cancel = await api.http.post(f"{ORDERS}/{order['id']}/cancel", headers=alice)
    assert cancel.status_code == 200, cancel.text
    later = await _post(api, alice, "tap-1")
    assert later.status_code == 201
    assert later.json()["status"] == cancel.json()["status"] == "cancelling"
    assert later.json() == (await api.http.get(f"{ORDERS}/{order['id']}", headers=alice)).json()

    # without a key, nothing changed: every request is an order of its own
    plain = [await _post(api, alice, None) for _ in range(2)]
    assert [r.status_code for r in plain] == [201, 201]
    assert len({r.json()["id"] for r in plain} | {order["id"]}) == 3
    assert (await _wallet(api, alice))[:2] == (1000, 9000)


async def test_the_same_key_for_another_request_is_refused(api: MoneyApi) -> None:
    await api.add_charger("CP1")
    await api.add_charger("CP2")
    alice = await _driver(api, "alice@example.org")
    first = await _post(api, alice, "tap-1")
    assert first.status_code == 201, first.text
    for other in (
        {**ORDER, "amount": 2000},
        {**ORDER, "evse_id": 2},
        {"charger_id": "CP1", "amount": 3000},
        {**ORDER, "charger_id": "CP2"},
        {"charger_id": "CP1", "evse_id": 1, "full": True},
    ):
        r = await _post(api, alice, "tap-1", other)
        assert r.status_code == 409, (other, r.text)
        problem = r.json()
        assert problem["code"] == "idempotency_conflict"
        assert "'tap-1'" in problem["detail"] and first.json()["id"] in problem["detail"]
    assert await _order_ids(api, alice) == [first.json()["id"]]
    assert await _wallet(api, alice) == (7000, 3000, ["hold", "top_up"])


async def test_keys_are_each_drivers_own(api: MoneyApi) -> None:
    await api.add_charger("CP1")
    alice = await _driver(api, "alice@example.org")
    bob = await _driver(api, "bob@example.org")
    hers = await _post(api, alice, "tap-1")
    his = await _post(api, bob, "tap-1", {**ORDER, "amount": 1000})
    assert hers.status_code == his.status_code == 201, his.text
    assert "Idempotent-Replayed" not in his.headers
    assert hers.json()["id"] != his.json()["id"]
    assert await _order_ids(api, bob) == [his.json()["id"]]
    assert (await _wallet(api, alice))[:2] == (7000, 3000)
    assert (await _wallet(api, bob))[:2] == (9000, 1000)


async def test_racing_requests_with_one_key_make_one_order(
    api: MoneyApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six requests at once. Where units of work run side by side (PostgreSQL's unit
    threads), the first two looks for the key are held until both have looked: both miss,
    both insert, and the unique index leaves one order (SQLite's units take turns in the
    database thread, so there the later ones simply find the first)."""
    await api.add_charger("CP1")
    alice = await _driver(api, "alice@example.org")
    if api.ctx.db.units:
        _hold_first_looks(monkeypatch, 2)
    answers = await asyncio.gather(*(_post(api, alice, "tap-1") for _ in range(6)))
    assert [r.status_code for r in answers] == [201] * 6, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in answers) == 5
    assert await _order_ids(api, alice) == [answers[0].json()["id"]]
    assert await _wallet(api, alice) == (7000, 3000, ["hold", "top_up"])


def _hold_first_looks(monkeypatch: pytest.MonkeyPatch, parties: int) -> None:
    """The first ``parties`` looks for a key (each in its own unit thread) wait for each
    other after looking; later looks go straight through."""
    real = store_orders.order_of_key
    barrier = threading.Barrier(parties)
    lock = threading.Lock()
    count = 0

    def together(session: Session, *, user_id: int, key: str) -> Order | None:
        nonlocal count
        found = real(session, user_id=user_id, key=key)
        with lock:
            count += 1
            held = count <= parties
        if held:
            barrier.wait(timeout=10)
        return found

    monkeypatch.setattr(store_orders, "order_of_key", together)


async def test_the_loser_of_a_race_finds_the_winners_order(
    api: MoneyApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second request's first look misses the first order (as when both look before
    either commits): its insert breaks the unique index, its unit of work runs again and
    finds the first order. Only the database keeps it from placing a second order."""
    await api.add_charger("CP1")
    alice = await _driver(api, "alice@example.org")
    first = await _post(api, alice, "tap-1")
    assert first.status_code == 201, first.text
    real = store_orders.order_of_key
    looks: list[Order | None] = []

    def too_early(session: Session, *, user_id: int, key: str) -> Order | None:
        found = real(session, user_id=user_id, key=key) if looks else None
        looks.append(found)
        return found

    monkeypatch.setattr(store_orders, "order_of_key", too_early)
    again = await _post(api, alice, "tap-1")
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(looks) == 2 and looks[1] is not None  # missed, lost the insert, found it
    assert await _order_ids(api, alice) == [first.json()["id"]]
    assert await _wallet(api, alice) == (7000, 3000, ["hold", "top_up"])


@SQLITE_ONLY
@pytest.mark.parametrize(
    "key",
    ["", "x" * 101, "tap\t1", "caf\xe9".encode("latin-1"), "caf\xe9".encode()],
    ids=["empty", "too-long", "tab", "latin-1", "utf-8"],
)
async def test_a_malformed_key_is_refused(api: MoneyApi, key: str | bytes) -> None:
    await api.add_charger("CP1")
    alice = await _driver(api, "alice@example.org")
    r = await _post(api, alice, key)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_key" and "Idempotency-Key" in r.json()["detail"]
    assert await _order_ids(api, alice) == []
    longest = await _post(api, alice, "k" * 100)
    spaced = await _post(api, alice, "tap 1 of 2", {**ORDER, "amount": 1000})
    assert longest.status_code == spaced.status_code == 201


def test_the_api_description_names_the_replay_header_and_the_key(tmp_path: Path) -> None:
    """A client generated from /openapi.json learns of the key and of a replayed answer."""
    operation = create_app(make_settings(tmp_path)).openapi()["paths"][ORDERS]["post"]
    headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert "idempotency-key" in [h.lower() for h in headers]
    created = operation["responses"]["201"]
    assert created["headers"]["Idempotent-Replayed"]["schema"]["enum"] == ["true"]
    assert "409" in operation["responses"]
