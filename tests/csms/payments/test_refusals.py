"""Refusals: forged, tampered (every claim), wrong charger key, another charger's order,
amount above the hold, cost mismatch, outside the order's window, replay after payment;
insufficient funds and unknown chargers at order time. Nothing is charged, evidence is kept."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from csms.payments.errors import InsufficientFunds
from csms.payments.order_errors import InvalidOrderRequest, SettlementRefused
from csms.payments.orders import snapshot
from csms.settlement_keys import set_settlement_key
from csms.store.chargers import create_charger
from csms.store.models_orders import Order, Payment, SettlementRejection
from qr_extension.jws import sign
from qr_extension.keys import generate_key
from qr_extension.refusal import Reason
from qr_extension.settlement import SETTLE_TYP, build_settlement, sign_settlement
from qr_extension.tariff import UsageBucket

from .conftest import FUNDS, T0, World

CLAIMS = (
    "iss", "aud", "jti", "txn", "evse", "ts", "te", "m0", "m1",
    "u", "amt", "cur", "tid", "rsn", "seq", "off", "iat",
)  # fmt: skip


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def _changed(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("X" if value[-1] != "X" else "Y")
    return [[0, 1, 1, 0]]


async def _refused(world: World, token: str) -> Reason:
    with pytest.raises(SettlementRefused) as refused:
        await world.service.submit(token, source="upload")
    return refused.value.refusal.reason


async def _nothing_charged(world: World) -> None:
    async with world.db.session() as session:
        assert (await session.exec(select(Payment))).all() == []
        assert (await session.exec(select(SettlementRejection))).all() != []
    assert await world.available() == FUNDS - 2000  # only the hold of the one order


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # signatures: backend-free
@pytest.mark.parametrize("claim", CLAIMS)
async def test_tampered_claim_breaks_the_signature(world: World, claim: str) -> None:
    order = await world.order()
    token = world.settlement(order)
    header, _, signature = token.split(".")
    claims = _claims(token)
    claims[claim] = _changed(claims[claim])
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    # a changed iss points at a charger without that key; anything else fails the signature
    expected = Reason.UNKNOWN_KEY if claim == "iss" else Reason.BAD_SIGNATURE
    assert await _refused(world, forged) == expected
    await _nothing_charged(world)


async def test_forged_and_wrong_keys(world: World) -> None:
    order = await world.order()
    stranger = generate_key()
    assert await _refused(world, world.settlement(order, key=stranger)) == Reason.UNKNOWN_KEY
    # a stranger's signature under the pinned key's kid
    claims = _claims(world.settlement(order))
    forged = sign(claims, stranger, typ=SETTLE_TYP)
    head = json.loads(base64.urlsafe_b64decode(forged.split(".")[0] + "=="))
    head["kid"] = world.charger_key.kid
    parts = forged.split(".")
    forged = ".".join([_b64(json.dumps(head).encode()), parts[1], parts[2]])
    assert await _refused(world, forged) == Reason.BAD_SIGNATURE
    assert await _refused(world, "not-a-token") == Reason.MALFORMED
    start_like = sign({"aud": "CP1", "jti": order.id}, world.charger_key, typ="start+jwt")
    assert await _refused(world, start_like) == Reason.WRONG_TYPE
    await _nothing_charged(world)


async def test_settlement_from_another_charger_for_this_order(world: World) -> None:
    order = await world.order()
    other = generate_key()
    async with world.db.session() as session:
        await create_charger(session, charger_id="CP2", password_hash=None, evses=1, now=T0)
    await set_settlement_key(world.db, charger_id="CP2", jwk=other.public.to_jwk(), now=T0)
    auth = dataclasses.replace(snapshot(order), charge_point_id="CP2")
    token = sign_settlement(
        build_settlement(
            auth, audience="qrcharge", transaction_id="1", started_at=auth.issued_at + 5,
            stopped_at=auth.issued_at + 600, meter_start_wh=0, meter_stop_wh=1000,
            usage=[UsageBucket(0, 1000, 595, 0)], reason="Local", seq=1, offline=True,
            issued_at=auth.issued_at + 600,
        ),
        other,
    )  # fmt: skip
    assert await _refused(world, token) == Reason.WRONG_ISSUER
    # over OCPP, a charger cannot deliver another charger's settlement either
    await world.service.on_settlement("CP1", token, "ocpp")
    await _nothing_charged(world)


async def test_amount_above_the_hold_and_cost_mismatch(world: World) -> None:
    order = await world.order(amount=500)  # hold 5.00; 10 kWh would cost 12.15
    good = build_settlement(
        snapshot(order), audience="qrcharge", transaction_id="7",
        started_at=snapshot(order).issued_at + 60, stopped_at=snapshot(order).issued_at + 1860,
        meter_start_wh=0, meter_stop_wh=10_000, usage=[UsageBucket(0, 10_000, 1800, 0)],
        reason="CostLimitReached", seq=1, offline=True, issued_at=snapshot(order).issued_at + 1900,
    )  # fmt: skip
    assert good.amount == 500  # the charger stops at the limit
    world.clock.now = datetime.fromtimestamp(good.issued_at, UTC)  # the session is over
    above = sign_settlement(dataclasses.replace(good, amount=501), world.charger_key)
    assert await _refused(world, above) == Reason.OVER_LIMIT
    cheaper = sign_settlement(dataclasses.replace(good, amount=499), world.charger_key)
    assert await _refused(world, cheaper) == Reason.COST_MISMATCH
    async with world.db.session() as session:
        assert (await session.exec(select(Payment))).all() == []
    await world.service.submit(sign_settlement(good, world.charger_key), source="upload")
    assert (await world.payments(order))[0].amount == 500


async def test_outside_the_order_window_and_mismatched_evse(world: World) -> None:
    order = await world.order()
    late = world.settlement(order, start_offset=900 + 301)  # after exp + leeway
    assert await _refused(world, late) == Reason.OUTSIDE_WINDOW
    early = world.settlement(order, start_offset=-301)
    assert await _refused(world, early) == Reason.OUTSIDE_WINDOW
    auth = dataclasses.replace(snapshot(order), evse_id=2)
    s = build_settlement(
        auth, audience="qrcharge", transaction_id="9", started_at=auth.issued_at + 5,
        stopped_at=auth.issued_at + 65, meter_start_wh=0, meter_stop_wh=10,
        usage=[UsageBucket(0, 10, 60, 0)], reason="Local", seq=1, offline=True,
        issued_at=auth.issued_at + 70,
    )  # fmt: skip
    assert await _refused(world, sign_settlement(s, world.charger_key)) == Reason.ORDER_MISMATCH
    await _nothing_charged(world)


async def test_unknown_order(world: World) -> None:
    order = await world.order()
    auth = dataclasses.replace(snapshot(order), order_id="NOSUCHORDER1")
    s = build_settlement(
        auth, audience="qrcharge", transaction_id="9", started_at=auth.issued_at + 5,
        stopped_at=auth.issued_at + 65, meter_start_wh=0, meter_stop_wh=10,
        usage=[UsageBucket(0, 10, 60, 0)], reason="Local", seq=1, offline=True,
        issued_at=auth.issued_at + 70,
    )  # fmt: skip
    assert await _refused(world, sign_settlement(s, world.charger_key)) == Reason.UNKNOWN_ORDER
    await _nothing_charged(world)


async def test_insufficient_funds_and_bad_requests_store_nothing(world: World) -> None:
    poor = await world.new_user(funds=1000)
    with pytest.raises(InsufficientFunds):
        await world.order(user_id=poor, amount=1001)
    with pytest.raises(InvalidOrderRequest):
        await world.order(amount=100, energy_wh=5)
    with pytest.raises(InvalidOrderRequest):
        await world.order(evse_id=9, amount=100)
    async with world.db.session() as session:
        assert (await session.exec(select(Order))).all() == []
    assert await world.available(poor) == 1000
    order = await world.order(user_id=poor, amount=1000)
    assert order.hold_amount == 1000 and await world.available(poor) == 0


async def test_implausible_times_are_refused(world: World) -> None:
    """A 60 s session claiming 400,000 charging seconds was billed for them up to lim.amt; a
    settlement that ends after the CSMS's now (plus the leeway) cannot have been made yet."""
    order = await world.order()
    stretched = world.settlement(order, wh=100, minutes=1, usage=[UsageBucket(0, 100, 400_000, 0)])
    assert await _refused(world, stretched) == Reason.USAGE_MISMATCH
    ahead = world.settlement(order, txn="2", minutes=10)
    world.clock.now -= timedelta(minutes=6)  # the CSMS's clock: 6 min before the session end
    assert await _refused(world, ahead) == Reason.OUTSIDE_WINDOW
    await _nothing_charged(world)
    world.clock.now += timedelta(minutes=6)
    outcome = await world.service.submit(ahead, source="upload")
    assert outcome.payment is not None and outcome.payment.amount == outcome.record.charge_amount


async def test_a_refusal_that_comes_again_is_counted_on_its_row(world: World) -> None:
    """The same forged settlement three times over OCPP and three times uploaded by two
    drivers: one row per source and driver, with its count; the token's claims as evidence."""
    order = await world.order()
    stranger = generate_key()
    forged = world.settlement(order, key=stranger)
    other = await world.new_user()
    for _ in range(3):
        await world.service.on_settlement("CP1", forged, "ocpp")
    for uploader in (world.user_id, other, world.user_id):
        with pytest.raises(SettlementRefused):
            await world.service.submit(forged, source="upload", user_id=uploader)
        world.clock.advance(60)
    async with world.db.session() as session:
        rows = (await session.exec(select(SettlementRejection))).all()
    got = sorted((r.source, r.user_id, r.count) for r in rows)
    assert got == [("ocpp", 0, 3), ("upload", world.user_id, 2), ("upload", other, 1)]
    for row in rows:
        assert (row.charger_id, row.order_id, row.kid) == ("CP1", order.id, stranger.kid)
        assert (row.reason, row.token_head, row.token_chars) == ("unknown_key", forged, len(forged))
    mine = next(r for r in rows if r.user_id == world.user_id)
    assert (mine.last_at - mine.created_at).total_seconds() == 120
    await _nothing_charged(world)


async def test_a_lifetime_register_and_a_high_seq_are_stored_whole(world: World) -> None:
    """A fast charger's register passes 2**31 Wh within years and ``seq`` is signed up to
    2**53: both fit the settlement record on every database (it was a 32-bit column on
    PostgreSQL, and the upload failed)."""
    order = await world.order()
    register = 5_000_000_000
    token = world.settlement(
        order, wh=1000, seq=2**40, meter_start_wh=register, meter_stop_wh=register + 1000
    )
    outcome = await world.service.submit(token, source="upload")
    assert outcome.record.seq == 2**40 and outcome.record.energy_wh == 1000
    assert outcome.payment is not None
