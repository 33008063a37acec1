"""Operator views of money: the ledger by account/user/order, and a driver's wallet."""

from __future__ import annotations

from sqlmodel import Session

from csms.payments import postings
from csms.store.units_of_work import in_worker

from ..conftest import MoneyApi

ADMIN = "/api/v1/admin"


async def test_ledger_and_wallet_views(api: MoneyApi) -> None:
    uid, _ = await api.driver("ops@example.org", funds=5000)

    def moves(s: Session) -> None:
        postings.place_hold(s, user_id=uid, order_id="O1", amount=1200, key="h1")
        postings.place_hold(s, user_id=uid, order_id="O2", amount=800, key="h2")
        postings.capture_and_release(
            s, user_id=uid, order_id="O1", amount=700, capture_key="c1", release_key="r1"
        )

    await in_worker(api.ctx.db, moves)

    r = await api.http.get(f"{ADMIN}/wallets/{uid}", headers=api.admin())
    assert r.status_code == 200
    assert r.json() == {
        "user_id": uid,
        "email": "ops@example.org",
        "currency": "CNY",
        "available": 5000 - 700 - 800,
        "held": 800,
        "holds": [{"order_id": "O2", "amount": 800}],
    }

    page = (
        await api.http.get(f"{ADMIN}/ledger", params={"account": "hold:O1"}, headers=api.admin())
    ).json()
    assert page["balance"] == 0
    assert [t["kind"] for t in page["transfers"]] == ["release", "capture", "hold"]
    capture = page["transfers"][1]
    assert capture["amount"] == 700 and capture["order_id"] == "O1"
    assert sorted((e["account"], e["amount"]) for e in capture["entries"]) == [
        ("hold:O1", -700),
        ("revenue", 700),
    ]
    revenue = (
        await api.http.get(f"{ADMIN}/ledger", params={"account": "revenue"}, headers=api.admin())
    ).json()
    assert revenue["balance"] == 700
    by_user = (
        await api.http.get(f"{ADMIN}/ledger", params={"user_id": uid, "kind": "top_up"},
                           headers=api.admin())
    ).json()  # fmt: skip
    assert by_user["balance"] is None
    assert [(t["kind"], t["amount"]) for t in by_user["transfers"]] == [("top_up", 5000)]
    by_order = (
        await api.http.get(f"{ADMIN}/ledger", params={"order_id": "O2"}, headers=api.admin())
    ).json()
    assert [t["idempotency_key"] for t in by_order["transfers"]] == ["h2"]
    paged = (
        await api.http.get(f"{ADMIN}/ledger", params={"limit": 2, "offset": 1},
                           headers=api.admin())
    ).json()  # fmt: skip
    assert [t["kind"] for t in paged["transfers"]] == ["capture", "hold"]


async def test_operator_views_need_the_key_and_a_user(api: MoneyApi) -> None:
    uid, auth = await api.driver("who@example.org")
    assert (await api.http.get(f"{ADMIN}/ledger")).status_code == 401
    assert (await api.http.get(f"{ADMIN}/wallets/{uid}", headers=auth)).status_code == 401
    r = await api.http.get(f"{ADMIN}/wallets/{uid + 100}", headers=api.admin())
    assert r.status_code == 404
    empty = (await api.http.get(f"{ADMIN}/ledger", params={"account": "nothing"},
                                headers=api.admin())).json()  # fmt: skip
    assert empty == {"account": "nothing", "balance": 0, "transfers": []}
