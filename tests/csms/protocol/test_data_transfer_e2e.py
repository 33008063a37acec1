"""Our vendor DataTransfers end to end, the sink hand-off, and key rotation pushes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jwt
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from csms.payments.settlement_service import read_received
from qr_extension.jws import sign
from qr_extension.keys import KeyRing, generate_key
from qr_extension.refusal import Refusal
from qr_extension.trust import verify_trusted_keys
from qr_extension.wire import MSG_TRUSTED_KEYS, VENDOR_ID

from ..clients import Client16, Client201, connect
from ..conftest import basic_auth, make_settings, serve


class RecordingSink:
    """Records what it is told; refuses a settlement as the settlement service reads it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def on_settlement(self, charger_id: str, token: str, source: Any) -> Refusal | None:
        self.calls.append(("settlement", charger_id, token, source))
        return read_received(token, source=source, charger_id=charger_id).refusal

    async def on_synced(self, charger_id: str, seq: int) -> None:
        self.calls.append(("synced", charger_id, seq))

    async def on_transaction_event(self, change: str, facts: Any) -> None:
        self.calls.append(("transaction", change, facts.transaction_id))


def dt16(message_id: str | None, data: str | None, vendor: str = VENDOR_ID) -> Any:
    return call16.DataTransfer(vendor_id=vendor, message_id=message_id, data=data)


async def test_vendor_messages_16(tmp_path: Path) -> None:
    sink = RecordingSink()
    first, second, third = generate_key(), generate_key(), generate_key()
    settlement = sign({"iss": "DT", "jti": "ORDER1", "txn": "1"}, first, typ="settle+jwt")
    foreign = sign({"iss": "OTHER", "jti": "ORDER1"}, first, typ="settle+jwt")
    async with serve(make_settings(tmp_path), sink=sink) as csms:
        await csms.add_charger("DT")
        async with connect(csms.ws_url("DT"), Client16, "ocpp1.6", basic_auth("DT")) as cp:

            async def send(message_id: str | None, data: str | None, **kw: Any) -> Any:
                return await cp.call(dt16(message_id, data, **kw), suppress=False)

            pin = await send("SettlementKey", json.dumps(first.public.to_jwk()))
            assert pin.status == "Accepted" and json.loads(pin.data) == {"kid": first.kid}
            again = await send("SettlementKey", json.dumps(first.public.to_jwk()))
            assert again.status == "Accepted"
            swap = await send("SettlementKey", json.dumps(second.public.to_jwk()))
            assert swap.status == "Rejected" and "pinned" in swap.data
            forged = jwt.encode(
                second.public.to_jwk(), third.key, algorithm="ES256", headers={"kid": first.kid}
            )
            assert (await send("SettlementKey", forged)).status == "Rejected"
            proper = jwt.api_jws.encode(
                json.dumps(second.public.to_jwk()).encode(),
                first.key,
                algorithm="ES256",
                headers={"kid": first.kid},
            )
            assert (await send("SettlementKey", proper)).status == "Accepted"
            assert (await send("SettlementKey", "{not json")).status == "Rejected"

            assert (await send("Settlement", settlement)).status == "Accepted"
            assert (await send("Settlement", settlement)).status == "Accepted"  # stored once
            wrong = await send("Settlement", foreign)
            assert wrong.status == "Rejected" and "wrong_issuer" in wrong.data
            assert (await send("Settlement", "garbage")).status == "Rejected"

            assert (await send("Synced", '{"seq": 4}')).status == "Accepted"
            assert (await send("Synced", '{"seq": -1}')).status == "Rejected"
            assert (await send("Synced", "[]")).status == "Rejected"
            assert (await send("TrustedKeys", "x")).status == "UnknownMessageId"
            assert (await send("Other", "x")).status == "UnknownMessageId"
            assert (await send("x", "y", vendor="com.example")).status == "UnknownVendorId"
        history = (await csms.http.get("/api/v1/admin/chargers/DT/settlement-keys")).json()
        charger = (await csms.http.get("/api/v1/admin/chargers/DT")).json()
        # the operator may replace the key without proof
        put = await csms.http.put(
            "/api/v1/admin/chargers/DT/settlement-key", json={"jwk": third.public.to_jwk()}
        )
        bad = await csms.http.put("/api/v1/admin/chargers/DT/settlement-key", json={"jwk": {}})
    assert [(k["kid"], k["retired_at"] is None) for k in history] == [
        (first.kid, False),
        (second.kid, True),
    ]
    assert charger["settlement_kid"] == second.kid
    assert put.status_code == 200 and put.json()["kid"] == third.kid
    assert bad.status_code == 422
    assert [c for c in sink.calls if c[0] != "transaction"] == [
        ("settlement", "DT", settlement, "ocpp"),
        ("settlement", "DT", settlement, "ocpp"),
        ("settlement", "DT", foreign, "ocpp"),  # handed over unread, refused by the sink
        ("settlement", "DT", "garbage", "ocpp"),
        ("synced", "DT", 4),
    ]


async def test_settlement_201_and_key_rotation_push(tmp_path: Path) -> None:
    async with serve(make_settings(tmp_path, key_prepublish_s=3600)) as csms:
        await csms.add_charger("ROT", evses=1)
        before = (await csms.http.get("/.well-known/jwks.json")).json()
        assert len(before["keys"]) == 1
        async with connect(csms.ws_url("ROT"), Client201, "ocpp2.0.1", basic_auth("ROT")) as cp:
            answer = await cp.call(
                call201.DataTransfer(vendor_id=VENDOR_ID, message_id="Synced", data='{"seq": 0}'),
                suppress=False,
            )
            assert answer.status == "Accepted"
            r = await csms.http.post("/api/v1/admin/keys/rotate")
            assert r.status_code == 200 and r.json()["pushed_to"] == 1
            new_kid = r.json()["kid"]
            pushed = await asyncio.wait_for(cp.data_transfers.get(), 5)
        after = (await csms.http.get("/.well-known/jwks.json")).json()
        keys = (await csms.http.get("/api/v1/admin/keys")).json()
    assert pushed["message_id"] == MSG_TRUSTED_KEYS
    # signed by the key the charger already trusts, carrying both keys
    ring = verify_trusted_keys(pushed["data"], trusted=KeyRing.from_jwks(before))
    assert isinstance(ring, KeyRing)
    assert {k.kid for k in ring} == {before["keys"][0]["kid"], new_kid}
    assert {k["kid"] for k in after["keys"]} == {k.kid for k in ring}
    signing = [k["kid"] for k in keys if k["signing"]]
    assert signing == [before["keys"][0]["kid"]]  # the new key waits for its pre-publication
