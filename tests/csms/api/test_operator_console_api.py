"""What the operator page reads and writes beyond the basics: the values of a change in the
audit log (a refund's amount, a card's new status, a cap; never a password), the id tag
list, transactions by state with their events and order, an order's payment by order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select
from starlette.requests import Request

from csms.api.audit import DETAILS_JSON_MAX, AuditNote, add_details, details_json
from csms.store.models import Transaction, TransactionEventRecord
from csms.store.models_orders import SettlementRecord
from qr_extension.keys import generate_key
from qr_extension.settlement import build_settlement, sign_settlement
from qr_extension.start import StartAuthorization, read_start_token
from qr_extension.tariff import UsageBucket

from ..conftest import ADMIN_KEY, MoneyApi
from .operator_helpers import ADMIN, OPERATOR_PASSWORD, operator


async def _log(api: MoneyApi, **params: Any) -> list[dict[str, Any]]:
    r = await api.http.get(f"{ADMIN}/audit", params=params, headers=api.admin())
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _captured_payment(api: MoneyApi, charger_id: str) -> tuple[str, int]:
    """A driver's order at ``charger_id`` settled (10 kWh) and confirmed: (order, payment)."""
    await api.add_charger(charger_id)
    key = generate_key()
    r = await api.http.put(
        f"{ADMIN}/chargers/{charger_id}/settlement-key",
        json={"jwk": key.public.to_jwk()},
        headers=api.admin(),
    )
    assert r.status_code == 200, r.text
    _, driver = await api.driver(f"payer-{charger_id.lower()}@example.org", funds=10_000)
    r = await api.http.post(
        "/api/v1/orders",
        json={"charger_id": charger_id, "evse_id": 1, "amount": 3000},
        headers=driver,
    )
    assert r.status_code == 201, r.text
    order = r.json()
    auth = read_start_token(order["start_token"])
    assert isinstance(auth, StartAuthorization)
    start = auth.issued_at + 30
    settlement = build_settlement(
        auth,
        audience="qrcharge",
        transaction_id="1",
        started_at=start,
        stopped_at=start + 1800,
        meter_start_wh=500,
        meter_stop_wh=10_500,
        usage=[UsageBucket(0, 10_000, 1800, 0)],
        reason="EVDisconnected",
        seq=1,
        offline=False,
        issued_at=start + 1800,
    )
    api.clock.now = max(api.clock.now, datetime.fromtimestamp(settlement.issued_at, UTC))
    token = sign_settlement(settlement, key)
    r = await api.http.post("/api/v1/settlements", json={"token": token}, headers=driver)
    assert r.status_code == 200, r.text
    payment_id = int(r.json()["payment_id"])
    r = await api.http.post(f"/api/v1/payments/{payment_id}/confirm", headers=driver)
    assert r.status_code == 200, r.text
    return order["id"], payment_id


async def test_a_refund_records_its_amount_and_a_password_never_appears(api: MoneyApi) -> None:
    order_id, payment_id = await _captured_payment(api, "CP-RF1")
    op = await operator(api, "rosa", "operator")
    r = await api.http.post(
        f"{ADMIN}/payments/{payment_id}/refunds", json={"amount": 250}, headers=op
    )
    assert r.status_code == 201, r.text
    # a refused one names what was asked, and the error
    r = await api.http.post(
        f"{ADMIN}/payments/{payment_id}/refunds", json={"amount": 999_999}, headers=op
    )
    assert r.status_code == 409
    new_password = "charger-secret-new-1"
    r = await api.http.patch(
        f"{ADMIN}/chargers/CP-RF1",
        json={"password": new_password, "registration": "Rejected"},
        headers=op,
    )
    assert r.status_code == 200, r.text
    r = await api.http.patch(
        f"{ADMIN}/operators/rosa", json={"password": "rosa-new-secret-1"}, headers=api.admin()
    )
    assert r.status_code == 200
    items = await _log(api)
    patched_op, patched, refused, refunded = items[0], items[1], items[2], items[3]
    assert refunded["action"] == f"POST {ADMIN}/payments/{{payment_id}}/refunds"
    assert refunded["target"] == f"payment_id={payment_id}"
    assert refunded["details"] == {
        "amount": 250,
        "currency": "CNY",
        "order_id": order_id,
        "refunded": 250,
    }
    assert (refused["status_code"], refused["details"]) == (409, {"amount": 999_999})
    assert patched["details"] == {"registration": "Rejected", "registration_before": "Accepted"}
    assert "new password" in patched["detail"]
    assert patched_op["details"] == {} and "new password" in patched_op["detail"]
    text = repr(items)
    for secret in (new_password, "rosa-new-secret-1", OPERATOR_PASSWORD, ADMIN_KEY):
        assert secret not in text
    assert "password" not in {name for item in items for name in item["details"]}
    # the driver's order shows the refund among its ledger transfers
    ledger = await api.http.get(
        f"{ADMIN}/ledger", params={"order_id": order_id}, headers=api.admin()
    )
    assert "refund" in [t["kind"] for t in ledger.json()["transfers"]]
    payments = await api.http.get(
        f"{ADMIN}/payments", params={"order_id": order_id}, headers=api.admin()
    )
    assert [(p["id"], p["refunded_amount"]) for p in payments.json()] == [(payment_id, 250)]
    none = await api.http.get(
        f"{ADMIN}/payments", params={"order_id": "O-none"}, headers=api.admin()
    )
    assert none.json() == []
    detail = await api.http.get(f"{ADMIN}/orders/{order_id}", headers=api.admin())
    assert detail.json()["paid_at"] is not None and detail.json()["settled_at"] is not None


def _request() -> tuple[Request, AuditNote]:
    note = AuditNote()
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "qrcharge.audit": note}
    return Request(scope), note


def test_details_keep_scalars_and_drop_anything_named_like_a_credential() -> None:
    request, note = _request()
    add_details(
        request,
        amount=5,
        status="Blocked",
        cap=None,
        password="p4ss",
        new_password="p4ss",
        api_key="k",
        token="t",
        secret_hex="ab",
        password_hash="h",
        items=[1, 2],  # type: ignore[arg-type]
        note="x" * 500,
    )
    assert note.details == {"amount": 5, "status": "Blocked", "note": "x" * 80}
    assert details_json({}) is None
    assert details_json({"amount": 5}) == '{"amount":5}'
    for n in range(40):
        add_details(request, **{f"field_{n}": n})
    assert len(note.details) == 12
    assert details_json({"a": "y" * (DETAILS_JSON_MAX + 1)}) is None


async def test_id_tags_listed_filtered_blocked_and_deleted(api: MoneyApi) -> None:
    admin = await operator(api, "ida", "admin")
    expiry = "2027-01-31T23:59:00Z"
    for tag, status in (("CARD-001", "Accepted"), ("CARD-002", "Accepted"), ("FOB-9", "Invalid")):
        body = {"id_tag": tag, "status": status} | ({"expiry": expiry} if tag == "CARD-002" else {})
        r = await api.http.put(f"{ADMIN}/id-tags", json=body, headers=admin)
        assert r.status_code == 200, r.text
    r = await api.http.put(
        f"{ADMIN}/id-tags", json={"id_tag": "CARD-001", "status": "Blocked"}, headers=admin
    )
    assert r.status_code == 200
    viewer = await operator(api, "ivy", "viewer")
    listed = (await api.http.get(f"{ADMIN}/id-tags", headers=viewer)).json()
    assert [(t["id_tag"], t["status"]) for t in listed] == [
        ("CARD-001", "Blocked"),
        ("CARD-002", "Accepted"),
        ("FOB-9", "Invalid"),
    ]
    assert listed[1]["expiry"] == expiry and listed[0]["expiry"] is None
    assert listed[0]["created_at"] == api.clock.now.isoformat().replace("+00:00", "Z")
    blocked = await api.http.get(f"{ADMIN}/id-tags", params={"status": "Blocked"}, headers=viewer)
    assert [t["id_tag"] for t in blocked.json()] == ["CARD-001"]
    cards = await api.http.get(f"{ADMIN}/id-tags", params={"prefix": "CARD"}, headers=viewer)
    assert [t["id_tag"] for t in cards.json()] == ["CARD-001", "CARD-002"]
    odd = await api.http.get(f"{ADMIN}/id-tags", params={"prefix": "CARD%"}, headers=viewer)
    assert odd.json() == []  # a wildcard is taken literally
    for params in ({"status": "Lost"}, {"limit": 0}, {"prefix": "x" * 37}):
        r = await api.http.get(f"{ADMIN}/id-tags", params=params, headers=viewer)
        assert r.status_code == 422, params
    r = await api.http.put(
        f"{ADMIN}/id-tags", json={"id_tag": "CARD-001", "status": "Lost"}, headers=admin
    )
    assert r.status_code == 422
    # a viewer reads but may not change
    r = await api.http.delete(f"{ADMIN}/id-tags/FOB-9", headers=viewer)
    assert r.status_code == 403
    assert (await api.http.delete(f"{ADMIN}/id-tags/FOB-9", headers=admin)).status_code == 204
    assert (await api.http.delete(f"{ADMIN}/id-tags/FOB-9", headers=admin)).status_code == 404
    items = await _log(api, actor="ida")
    block = next(i for i in items if i["details"].get("status") == "Blocked")
    assert block["details"] == {"id_tag": "…-001", "status": "Blocked", "expiry": "none"}
    made = next(i for i in items if i["details"].get("id_tag") == "…-002")
    assert made["details"]["expiry"].startswith("2027-01-31T23:59:00")


async def test_transactions_by_state_with_events_and_their_order(api: MoneyApi) -> None:
    order_id, _ = await _captured_payment(api, "CP-TX1")
    t0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    async with api.ctx.db.session() as session:
        ended = Transaction(
            charger_id="CP-TX1",
            transaction_id="tx-ended",
            ocpp_version="2.0.1",
            evse_id=1,
            started_at=t0,
            stopped_at=t0 + timedelta(minutes=30),
            meter_start_wh=100,
            meter_stop_wh=5100,
            state="Ended",
        )
        running = Transaction(
            charger_id="CP-TX1",
            transaction_id="tx-running",
            ocpp_version="2.0.1",
            evse_id=2,
            started_at=t0 + timedelta(days=1),
            state="Started",
        )
        session.add_all([ended, running])
        await session.commit()
        await session.refresh(ended)
        await session.refresh(running)
        for seq, kind, trigger in ((1, "Ended", "EVDeparted"), (0, "Started", "Authorized")):
            session.add(
                TransactionEventRecord(
                    charger_id="CP-TX1",
                    transaction_id="tx-ended",
                    seq_no=seq,
                    event_type=kind,
                    trigger_reason=trigger,
                    timestamp=t0 + timedelta(minutes=30 * seq),
                    response="{}",
                )
            )
        query = select(SettlementRecord).where(SettlementRecord.order_id == order_id)
        row = (await session.exec(query)).first()
        assert row is not None
        row.ocpp_transaction_pk = ended.id
        session.add(row)
        await session.commit()
        ended_pk, running_pk = ended.id, running.id

    async def listed(**params: Any) -> list[str]:
        params["charger_id"] = "CP-TX1"
        r = await api.http.get(f"{ADMIN}/transactions", params=params, headers=api.admin())
        assert r.status_code == 200, r.text
        return [t["transaction_id"] for t in r.json()]

    assert await listed() == ["tx-running", "tx-ended"]
    assert await listed(state="Ended") == ["tx-ended"]
    assert await listed(state="Started") == ["tx-running"]
    assert await listed(since="2026-12-02T00:00:00Z") == ["tx-running"]
    assert await listed(since="2026-12-01T00:00:00", until="2026-12-02T00:00:00") == ["tx-ended"]
    for params in (
        {"state": "Paused"},
        {"since": "yesterday"},
        {"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"},
        {"charger_id": "x" * 49},
    ):
        r = await api.http.get(f"{ADMIN}/transactions", params=params, headers=api.admin())
        assert r.status_code == 422, params

    detail = (await api.http.get(f"{ADMIN}/transactions/{ended_pk}", headers=api.admin())).json()
    assert detail["order_id"] == order_id
    assert [(e["seq_no"], e["event_type"], e["trigger_reason"]) for e in detail["events"]] == [
        (0, "Started", "Authorized"),
        (1, "Ended", "EVDeparted"),
    ]
    other = (await api.http.get(f"{ADMIN}/transactions/{running_pk}", headers=api.admin())).json()
    assert (other["order_id"], other["events"]) == (None, [])


async def test_a_cap_a_new_availability_and_a_cancel_are_named_in_the_log(api: MoneyApi) -> None:
    admin = await operator(api, "carla", "admin")
    model = {"id": "CAP-1", "currency": "CNY", "energy_price": 12_000, "cap": 4_000}
    r = await api.http.post(f"{ADMIN}/billing-models", json=model, headers=admin)
    assert r.status_code == 201, r.text
    changed = {k: v for k, v in model.items() if k != "id"} | {"cap": 6_000}
    r = await api.http.put(f"{ADMIN}/billing-models/CAP-1", json=changed, headers=admin)
    assert r.status_code == 200, r.text
    await api.add_charger("CP-AV1")
    payload = {"connectorId": 1, "type": "Inoperative", "idTag": "SECRET-CARD"}
    r = await api.http.post(
        f"{ADMIN}/chargers/CP-AV1/commands/ChangeAvailability", json=payload, headers=admin
    )
    assert r.status_code == 409  # not connected: the attempt is recorded with what it asked
    r = await api.http.post(
        f"{ADMIN}/chargers/CP-AV1/commands/ChangeConfiguration",
        json={"key": "AuthorizationKey", "value": "0123456789abcdef"},
        headers=admin,
    )
    items = await _log(api, actor="carla")
    configuration, availability, updated = items[0], items[1], items[2]
    assert updated["details"]["cap"] == 6_000 and updated["details"]["version"] == 2
    assert availability["details"] == {"connectorId": 1, "type": "Inoperative"}
    assert configuration["details"] == {}
    assert "0123456789abcdef" not in repr(items) and "SECRET-CARD" not in repr(items)
    _, driver = await api.driver("cancel@example.org", funds=5_000)
    r = await api.http.post(
        "/api/v1/orders", json={"charger_id": "CP-AV1", "amount": 1_000}, headers=driver
    )
    assert r.status_code == 201, r.text
    r = await api.http.post(f"{ADMIN}/orders/{r.json()['id']}/cancel", headers=admin)
    assert r.status_code == 200, r.text
    cancelled = (await _log(api, actor="carla"))[0]
    assert cancelled["details"] == {
        "status": "cancelled",
        "released": 1_000,
        "revoked_at_charger": False,
    }
