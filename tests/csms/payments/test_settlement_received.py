"""A received settlement, whichever way it arrives (uploaded as text or as a photo, sent by its
charger in a DataTransfer), is read once per trip, kept in the inbox once and billed once; what
cannot be read, or names another charger than the sender, is answered Rejected over OCPP."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as call16
from sqlalchemy import func
from sqlmodel import select

from csms.api.routes import settlements as routes
from csms.store import orders as store_orders
from csms.store.models import SettlementInbox
from csms.store.models_orders import Payment, SettlementRejection
from qr_extension import jws
from qr_extension.keys import generate_key
from qr_extension.qr import render_png
from qr_extension.refusal import Reason
from qr_extension.start import StartAuthorization, read_start_token
from qr_extension.wire import VENDOR_ID

from ..clients import Client16, connect
from ..conftest import basic_auth
from .conftest import World
from .test_flow_e2e import Flow, flow, settle


class Readings:
    """Counts every reading of the tracked tokens: each reader of a compact JWS starts with
    :func:`~qr_extension.jws.check_shape` or decodes a segment itself."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tracked: set[str] = set()
        self.count: Counter[str] = Counter()
        self._wrap(monkeypatch, jws, "check_shape")
        self._wrap(monkeypatch, jws, "unverified_claims")
        self._wrap(monkeypatch, routes, "b64url_decode")

    def _wrap(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
        real: Callable[..., Any] | None = getattr(module, name, None)
        if real is None:
            return

        def counted(arg: Any, *args: Any, **kwargs: Any) -> Any:
            for token in self.tracked:
                if isinstance(arg, str) and (arg.strip() == token or token.startswith(arg + ".")):
                    self.count[token] += 1
            return real(arg, *args, **kwargs)

        monkeypatch.setattr(module, name, counted)

    def track(self, token: str) -> str:
        self.tracked.add(token)
        return token


async def _order(f: Flow, auth: dict[str, str], evse: int) -> StartAuthorization:
    r = await f.csms.http.post(
        "/api/v1/orders", json={"charger_id": "RX", "evse_id": evse, "amount": 3000}, headers=auth
    )
    assert r.status_code == 201, r.text
    start = read_start_token(r.json()["start_token"])
    assert isinstance(start, StartAuthorization)
    return start


async def _count(f: Flow, model: Any, **where: Any) -> int:
    async with f.csms.ctx.db.session() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int((await session.exec(query)).one())


async def test_each_trip_reads_the_token_once(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings = Readings(monkeypatch)
    async with flow(tmp_path, db_url) as f:
        await f.csms.add_charger("RX", evses=3)
        key = generate_key()
        r = await f.csms.http.put(
            "/api/v1/admin/chargers/RX/settlement-key", json={"jwk": key.public.to_jwk()}
        )
        assert r.status_code in (200, 201), r.text
        bob = await f.driver("bob@example.org", 20_000)
        starts = [await _order(f, bob, evse) for evse in (1, 2, 3)]
        at = int((f.clock.now + timedelta(minutes=1)).timestamp())

        def token_of(n: int, signer: Any = key) -> str:
            txn = f"00000{n}-abc"
            token = settle(starts[n], signer, txn=txn, start=at, wh=2000, seq=n + 1, clock=f.clock)
            return readings.track(token)

        text, photo, sent = token_of(0), token_of(1), token_of(2)
        forged = token_of(2, generate_key())
        r = await f.csms.http.post("/api/v1/settlements", json={"token": text}, headers=bob)
        assert r.status_code == 200, r.text
        files = {"image": ("qr.png", render_png(photo), "image/png")}
        r = await f.csms.http.post("/api/v1/settlements", files=files, headers=bob)
        assert r.status_code == 200, r.text
        r = await f.csms.http.post("/api/v1/settlements", json={"token": forged}, headers=bob)
        assert r.status_code == 422 and r.json()["detail"]["reason"] == "unknown_key"

        foreign = readings.track(jws.sign({"iss": "OTHER", "jti": "X1"}, key, typ="settle+jwt"))
        async with connect(f.csms.ws_url("RX"), Client16, "ocpp1.6", basic_auth("RX")) as cp:

            async def send(data: str) -> Any:
                request = call16.DataTransfer(VENDOR_ID, message_id="Settlement", data=data)
                return await cp.call(request, suppress=False)

            assert (await send(sent)).status == "Accepted"
            assert (await send(sent)).status == "Accepted"  # a resend: stored and billed once
            wrong = await send(foreign)
            assert wrong.status == "Rejected" and "wrong_issuer" in wrong.data
            garbage = await send("garbage")
            assert garbage.status == "Rejected" and "malformed" in garbage.data

        assert readings.count == {text: 1, photo: 1, forged: 1, sent: 2, foreign: 1}
        assert await _count(f, SettlementInbox) == 3  # the three good ones, once each
        assert await _count(f, SettlementInbox, source="ocpp") == 1
        assert await _count(f, Payment) == 3
        assert await _count(f, SettlementRejection) == 1  # the forged upload


async def test_a_chargers_refused_token_is_kept_once_and_counted(world: World) -> None:
    """A token its charger sent that does not verify is taken (Accepted): kept in the inbox
    once and its refusal counted; one that cannot be read or names another charger is not
    taken (Rejected with the refusal) and leaves nothing behind."""
    order = await world.order()
    forged = world.settlement(order, key=generate_key())
    foreign = jws.sign({"iss": "CP9", "jti": order.id}, world.charger_key, typ="settle+jwt")
    for _ in range(2):
        assert await world.service.on_settlement("CP1", forged, "ocpp") is None
        refusal = await world.service.on_settlement("CP1", foreign, "ocpp")
        assert refusal is not None and refusal.reason == Reason.WRONG_ISSUER
        refusal = await world.service.on_settlement("CP1", "garbage", "ocpp")
        assert refusal is not None and refusal.reason == Reason.MALFORMED
    async with world.db.session() as session:
        inbox = (await session.exec(select(SettlementInbox))).all()
        rejections = (await session.exec(select(SettlementRejection))).all()
    assert [(r.charger_id, r.token, r.source) for r in inbox] == [("CP1", forged, "ocpp")]
    assert [(r.source, r.reason, r.count) for r in rejections] == [("ocpp", "unknown_key", 2)]


def test_a_token_with_a_lone_surrogate_is_refused_not_raised() -> None:
    """JSON may carry ``\\ud800`` in a DataTransfer's data: the token is malformed, and the
    charger must get Rejected rather than a CALLERROR it would answer by sending it again."""
    from csms.payments.settlement_service import read_received

    received = read_received("eyJ\ud800.x.y", source="ocpp", charger_id="CP1")
    assert received.refusal is not None and received.refusal.reason == Reason.MALFORMED


async def test_the_upload_answer_says_whether_the_order_is_flagged(
    tmp_path: Path, db_url: str
) -> None:
    """The answer to an upload carries the order's flags as read in the settling unit."""
    async with flow(tmp_path, db_url) as f:
        await f.csms.add_charger("RX", evses=2)
        key = generate_key()
        r = await f.csms.http.put(
            "/api/v1/admin/chargers/RX/settlement-key", json={"jwk": key.public.to_jwk()}
        )
        assert r.status_code in (200, 201), r.text
        bob = await f.driver("bob@example.org", 20_000)
        plain, flagged = [await _order(f, bob, evse) for evse in (1, 2)]
        claimed = await store_orders.claim_flag(
            f.csms.ctx.db, order_id=flagged.order_id, kind="limit_stop", detail="energy"
        )
        assert claimed
        at = int((f.clock.now + timedelta(minutes=1)).timestamp())
        answers = []
        for n, start in enumerate((plain, flagged)):
            token = settle(
                start, key, txn=f"00000{n}-flg", start=at, wh=2000, seq=n + 1, clock=f.clock
            )
            r = await f.csms.http.post("/api/v1/settlements", json={"token": token}, headers=bob)
            assert r.status_code == 200, r.text
            answers.append(r.json())
        assert [a["flagged"] for a in answers] == [False, True]
        # the same as a later read of the record shows
        for answer in answers:
            r = await f.csms.http.get(f"/api/v1/settlements/{answer['id']}", headers=bob)
            assert r.json()["flagged"] == answer["flagged"]
