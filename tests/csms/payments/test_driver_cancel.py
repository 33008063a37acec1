"""The driver's cancel, ``POST /api/v1/orders/{id}/cancel``, over HTTP with a real OCPP
connection (chargers built from the plain ``ocpp`` library), on SQLite and PostgreSQL.

Only the owner may cancel, only an order no charger has used; a connected charger that stores
the revocation (``Revoke`` answered ``Accepted``) lets the hold go back at once; any other
answer, or no charger, leaves the hold to the unused-order rule: ``exp + leeway`` and a later
``Synced``. A start the charger reports for a cancelled order is still honoured and billed."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from qr_extension.keys import generate_key
from qr_extension.start import StartAuthorization, read_start_token
from qr_extension.wire import VENDOR_ID, ocpp_timestamp

from ..clients import connect
from ..conftest import basic_auth
from .test_flow_e2e import Flow, flow, settle

LEEWAY = timedelta(seconds=300)  # the default token_leeway_s


class Plain16(Cp16):  # type: ignore[misc]
    """A 1.6 charger of the plain library that answers ``Revoke`` with ``answer``."""

    answer = "Accepted"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.revokes: list[str] = []
        self.on_revoke: Any = None  # a callback run before the answer (the race test)

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **kw: Any) -> Any:
        if kw.get("message_id") == "Revoke":
            self.revokes.append(kw["data"])
            if self.on_revoke is not None:
                self.on_revoke()
            return result16.DataTransfer(status=self.answer)
        return result16.DataTransfer(status="Accepted")


class Plain201(Cp201):  # type: ignore[misc]
    """The same on 2.0.1."""

    answer = "Accepted"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.revokes: list[str] = []

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **kw: Any) -> Any:
        if kw.get("message_id") == "Revoke":
            self.revokes.append(kw["data"])
            return result201.DataTransfer(status=self.answer)
        return result201.DataTransfer(status="Accepted")


class Bare16(Cp16):  # type: ignore[misc]
    """A 1.6 charger with no DataTransfer handler at all: the library answers a CALLERROR."""


class Bare201(Cp201):  # type: ignore[misc]
    pass


PEERS = {"1.6": (Plain16, Bare16, "ocpp1.6"), "2.0.1": (Plain201, Bare201, "ocpp2.0.1")}


async def _order(f: Flow, auth: dict[str, str], charger: str, amount: int = 3000) -> dict[str, Any]:
    r = await f.csms.http.post(
        "/api/v1/orders",
        json={"charger_id": charger, "evse_id": 1, "amount": amount},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _cancel(f: Flow, order_id: str, auth: dict[str, str]) -> Any:
    return await f.csms.http.post(f"/api/v1/orders/{order_id}/cancel", headers=auth)


def _release_at(order: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(order["expires_at"]) + LEEWAY


async def _flags(f: Flow, order_id: str) -> set[str]:
    detail = (await f.csms.http.get(f"/api/v1/admin/orders/{order_id}")).json()
    return {flag["kind"] for flag in detail["flags"]}


async def _synced(cp: Any, version: str, seq: int = 0) -> None:
    call = call16 if version == "1.6" else call201
    dt = call.DataTransfer(vendor_id=VENDOR_ID, message_id="Synced", data=json.dumps({"seq": seq}))
    assert (await cp.call(dt, suppress=False)).status == "Accepted"


async def test_cancel_without_a_charger_keeps_the_hold_until_exp_and_a_later_synced(
    tmp_path: Path, db_url: str
) -> None:
    async with flow(tmp_path, db_url) as f:
        http = f.csms.http
        await f.csms.add_charger("CX16")
        alice = await f.driver("alice@example.org", 10_000)
        mallory = await f.driver("mallory@example.org", 10_000)
        order = await _order(f, alice, "CX16")
        assert (await _cancel(f, order["id"], mallory)).status_code == 404  # not hers
        assert (await _cancel(f, "NOSUCHORDER1", alice)).status_code == 404
        r = await _cancel(f, order["id"], alice)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body == {
            "id": order["id"],
            "status": "cancelling",
            "hold_released": False,
            "hold_release_at": body["hold_release_at"],
            "revoked_at_charger": False,
            "hold_amount": 3000,
        }
        assert datetime.fromisoformat(body["hold_release_at"]) == _release_at(order)
        assert body["hold_release_at"].endswith(("Z", "+00:00"))
        assert await f.balance(alice) == 7000  # the hold stays
        again = await _cancel(f, order["id"], alice)
        assert again.status_code == 200 and again.json() == body  # a repeat is the same answer
        r = await http.get(f"/api/v1/orders/{order['id']}", headers=alice)
        assert r.json()["status"] == "cancelling"
        r = await http.post(f"/api/v1/orders/{order['id']}/remote-start", headers=alice)
        assert r.status_code == 409
        assert "cancelled" in await _flags(f, order["id"])

        # the token expires, but the charger has not said its queue is drained: hold kept
        f.clock.now = _release_at(order) + timedelta(seconds=1)
        report = await f.reaper.reap_once()
        assert order["id"] not in report.released
        assert await f.balance(alice) == 7000
        async with connect(f.csms.ws_url("CX16"), Bare16, "ocpp1.6", basic_auth("CX16")) as cp:
            await _synced(cp, "1.6")
        report = await f.reaper.reap_once()
        assert report.released == [order["id"]]
        assert await f.balance(alice) == 10_000
        r = await _cancel(f, order["id"], alice)
        assert r.status_code == 200
        assert r.json() == {
            **body,
            "status": "cancelled",
            "hold_released": True,
            "hold_release_at": None,
        }


async def test_only_an_unused_order_can_be_cancelled(tmp_path: Path, db_url: str) -> None:
    async with flow(tmp_path, db_url) as f:
        http = f.csms.http
        await f.csms.add_charger("CU16")
        key = generate_key()
        r = await http.put(
            "/api/v1/admin/chargers/CU16/settlement-key", json={"jwk": key.public.to_jwk()}
        )
        assert r.status_code in (200, 201), r.text
        bob = await f.driver("bob@example.org", 20_000)
        started, settled, expired = [await _order(f, bob, "CU16") for _ in range(3)]
        async with connect(f.csms.ws_url("CU16"), Bare16, "ocpp1.6", basic_auth("CU16")) as cp:
            answer = await cp.call(
                call16.StartTransaction(
                    connector_id=1,
                    id_tag=started["id"],
                    meter_start=0,
                    timestamp=ocpp_timestamp(f.clock.now),
                ),
                suppress=False,
            )
            assert answer.id_tag_info["status"] == "Accepted"
        r = await _cancel(f, started["id"], bob)
        assert r.status_code == 409 and "already started" in r.json()["detail"]

        auth = read_start_token(settled["start_token"])
        assert isinstance(auth, StartAuthorization)
        token = settle(
            auth, key, txn="000002-aaaaaa", start=auth.issued_at + 60, wh=2000, seq=1, clock=f.clock
        )
        r = await http.post("/api/v1/settlements", json={"token": token}, headers=bob)
        assert r.status_code in (200, 201), r.text
        payment_id = r.json()["payment_id"]
        r = await _cancel(f, settled["id"], bob)
        assert r.status_code == 409 and "already settled" in r.json()["detail"]
        r = await http.post(f"/api/v1/payments/{payment_id}/confirm", headers=bob)
        assert r.status_code == 200, r.text
        r = await _cancel(f, settled["id"], bob)
        assert r.status_code == 409 and "already paid" in r.json()["detail"]

        f.clock.now = _release_at(expired) + timedelta(seconds=1)
        async with connect(f.csms.ws_url("CU16"), Bare16, "ocpp1.6", basic_auth("CU16")) as cp:
            await _synced(cp, "1.6", seq=1)
        assert expired["id"] in (await f.reaper.reap_once()).released
        r = await _cancel(f, expired["id"], bob)
        assert r.status_code == 409 and "expired" in r.json()["detail"]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_charger_that_stores_the_revocation_releases_the_hold_at_once(
    tmp_path: Path, db_url: str, version: str
) -> None:
    plain, _, subprotocol = PEERS[version]
    async with flow(tmp_path, db_url) as f:
        charger = f"CR{version.replace('.', '')}"
        await f.csms.add_charger(charger)
        carol = await f.driver("carol@example.org", 10_000)
        order = await _order(f, carol, charger)
        async with connect(f.csms.ws_url(charger), plain, subprotocol, basic_auth(charger)) as cp:
            r = await _cancel(f, order["id"], carol)
            assert r.status_code == 200, r.text
            assert r.json() == {
                "id": order["id"],
                "status": "cancelled",
                "hold_released": True,
                "hold_release_at": None,
                "revoked_at_charger": True,
                "hold_amount": 3000,
            }
            exp = int(datetime.fromisoformat(order["expires_at"]).timestamp())
            assert [json.loads(d) for d in cp.revokes] == [{"jti": order["id"], "exp": exp}]
            assert isinstance(cp.revokes[0], str)  # data is always a string
            assert await f.balance(carol) == 10_000
            again = await _cancel(f, order["id"], carol)
            assert again.json() == r.json() and len(cp.revokes) == 1  # nothing left to revoke
        assert {"cancelled", "revoked"} <= await _flags(f, order["id"])


@pytest.mark.parametrize(
    ("version", "answer"),
    [
        ("1.6", "Rejected"),
        ("2.0.1", "UnknownMessageId"),
        ("1.6", "UnknownVendorId"),
        ("2.0.1", None),
        ("1.6", None),
    ],
)
async def test_a_charger_without_the_revocation_leaves_the_hold_to_the_unused_order_rule(
    tmp_path: Path, db_url: str, version: str, answer: str | None
) -> None:
    """``None``: a charger with no DataTransfer handler (a CALLERROR)."""
    plain, bare, subprotocol = PEERS[version]
    async with flow(tmp_path, db_url) as f:
        charger = f"CN{version.replace('.', '')}"
        await f.csms.add_charger(charger)
        dave = await f.driver("dave@example.org", 10_000)
        order = await _order(f, dave, charger)
        peer = plain if answer is not None else bare
        async with connect(f.csms.ws_url(charger), peer, subprotocol, basic_auth(charger)) as cp:
            cp.answer = answer
            r = await _cancel(f, order["id"], dave)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["status"] == "cancelling" and body["hold_released"] is False
            assert body["revoked_at_charger"] is False
            assert datetime.fromisoformat(body["hold_release_at"]) == _release_at(order)
            if answer is not None:
                assert len(cp.revokes) == 1
            assert await f.balance(dave) == 7000
            f.clock.now = _release_at(order) + timedelta(seconds=1)
            await _synced(cp, version)
        assert (await f.reaper.reap_once()).released == [order["id"]]
        assert await f.balance(dave) == 10_000
        r = await f.csms.http.get(f"/api/v1/orders/{order['id']}", headers=dave)
        assert r.json()["status"] == "cancelled"


async def test_a_start_that_races_the_revocation_is_honoured_and_billed_from_the_hold(
    tmp_path: Path, db_url: str
) -> None:
    """The charger scanned the QR while the cancel was on its way: it used the token, so it
    answers the ``Revoke`` with ``Rejected``, and its StartTransaction reaches a cancelled
    order. The session is recorded, the order moves on and is billed from the hold it kept."""
    async with flow(tmp_path, db_url) as f:
        http = f.csms.http
        await f.csms.add_charger("CRACE")
        erin = await f.driver("erin@example.org", 10_000)
        order = await _order(f, erin, "CRACE")
        t0 = f.clock.now
        async with connect(f.csms.ws_url("CRACE"), Plain16, "ocpp1.6", basic_auth("CRACE")) as cp:
            cp.answer = "Rejected"
            starts: list[asyncio.Task[Any]] = []

            def start_now() -> None:  # sent while the Revoke is in flight
                start = call16.StartTransaction(
                    connector_id=1,
                    id_tag=order["id"],
                    meter_start=100,
                    timestamp=ocpp_timestamp(t0),
                )
                starts.append(asyncio.ensure_future(cp.call(start, suppress=False)))

            cp.on_revoke = start_now
            r = await _cancel(f, order["id"], erin)
            assert r.status_code == 200, r.text
            assert r.json()["hold_released"] is False and r.json()["revoked_at_charger"] is False
            started = await starts[0]
            # answered like any cancelled order's id (the charger may stop), never refused
            assert started.id_tag_info["status"] == "Invalid"
            stop = call16.StopTransaction(
                meter_stop=2100,
                timestamp=ocpp_timestamp(t0 + timedelta(minutes=20)),
                transaction_id=started.transaction_id,
                id_tag=order["id"],
                reason="Local",
            )
            await cp.call(stop, suppress=False)
        r = await http.get(f"/api/v1/orders/{order['id']}", headers=erin)
        body = r.json()
        assert body["status"] == "settled" and body["amount"] > 0, body
        assert "started_after_cancel" in await _flags(f, order["id"])
        r = await http.post(f"/api/v1/payments/{body['payment_id']}/confirm", headers=erin)
        assert r.status_code == 200, r.text
        assert await f.balance(erin) == 10_000 - body["amount"]  # captured from the hold
        # nothing is left for the reaper to release
        f.clock.now = _release_at(order) + timedelta(hours=1)
        assert order["id"] not in (await f.reaper.reap_once()).released


async def test_a_settlement_after_the_hold_went_back_is_billed_as_a_debt(
    tmp_path: Path, db_url: str
) -> None:
    async with flow(tmp_path, db_url) as f:
        http = f.csms.http
        await f.csms.add_charger("CDEBT")
        key = generate_key()
        r = await http.put(
            "/api/v1/admin/chargers/CDEBT/settlement-key", json={"jwk": key.public.to_jwk()}
        )
        assert r.status_code in (200, 201), r.text
        fay = await f.driver("fay@example.org", 10_000)
        order = await _order(f, fay, "CDEBT")
        async with connect(f.csms.ws_url("CDEBT"), Plain16, "ocpp1.6", basic_auth("CDEBT")):
            r = await _cancel(f, order["id"], fay)
            assert r.json()["hold_released"] is True
        auth = read_start_token(order["start_token"])
        assert isinstance(auth, StartAuthorization)
        token = settle(
            auth, key, txn="000003-bbbbbb", start=auth.issued_at + 60, wh=2000, seq=1, clock=f.clock
        )
        r = await http.post("/api/v1/settlements", json={"token": token}, headers=fay)
        assert r.status_code in (200, 201), r.text
        assert "settled_after_release" in await _flags(f, order["id"])
        r = await http.post(f"/api/v1/payments/{r.json()['payment_id']}/confirm", headers=fay)
        assert r.status_code == 200, r.text
        amount = r.json()["amount"]
        assert amount > 0 and await f.balance(fay) == 10_000 - amount


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_the_operators_cancel_revokes_the_token_first_when_the_charger_is_connected(
    tmp_path: Path, db_url: str, version: str
) -> None:
    """The operator's cancel releases the hold at once (its override of the unused-order
    rule), but first makes the start code useless at a connected charger."""
    plain, _, subprotocol = PEERS[version]
    async with flow(tmp_path, db_url) as f:
        charger = f"OP{version.replace('.', '')}"
        await f.csms.add_charger(charger)
        carol = await f.driver("carol@example.org", 10_000)
        online, offline = await _order(f, carol, charger), await _order(f, carol, charger, 2000)
        async with connect(f.csms.ws_url(charger), plain, subprotocol, basic_auth(charger)) as cp:
            r = await f.csms.http.post(f"/api/v1/admin/orders/{online['id']}/cancel")
            assert r.status_code == 200, r.text
            assert r.json() == {
                "order_id": online["id"], "status": "cancelled", "released": 3000,
                "revoked_at_charger": True,
            }  # fmt: skip
            assert [json.loads(d)["jti"] for d in cp.revokes] == [online["id"]]
        r = await f.csms.http.post(f"/api/v1/admin/orders/{offline['id']}/cancel")
        assert r.json()["revoked_at_charger"] is False and r.json()["released"] == 2000
        assert await f.balance(carol) == 10_000
