"""The payment side's database fails once, right after the CSMS committed a charger's message:
the charger's end of a transaction (1.6 StopTransaction, 2.0.1 TransactionEvent Ended) or its
signed settlement (DataTransfer ``Settlement``).

The CSMS must not answer as if all was done: the charger gets a CALLERROR, sends the message
again, and the repeat (already stored) hands the transaction or the token to the payment side
again, which bills the order once. The same path completes the billing when the CSMS process
died between the commit and the payment side (the charger then got no answer at all).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from csms.payments import settlement_service
from qr_extension.keys import generate_key
from qr_extension.settlement import build_settlement, sign_settlement
from qr_extension.start import StartAuthorization, read_start_token
from qr_extension.tariff import UsageBucket
from tests.csms.conftest import LiveCsms, make_settings, serve
from tests.faults import tally
from tests.faults.checks import assert_invariants, ocpp_cost, rows
from tests.faults.wire_charger import WireCharger

pytestmark = pytest.mark.slow

PASSWORD = "after-commit-pw"


class FailOnce:
    """Wraps the payment side's unit-of-work runner: when armed, the next unit fails as a
    lost database connection would."""

    def __init__(self, inner: Callable[..., Awaitable[Any]]) -> None:
        self.inner = inner
        self.armed = False
        self.failed = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.armed:
            self.armed = False
            self.failed += 1
            raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))
        return await self.inner(*args, **kwargs)


def arm_before(cp: WireCharger, action: str, fault: FailOnce, event: str | None = None) -> None:
    """Arms ``fault`` as the message before the first ``action`` (of ``event`` type) is
    answered, so that the payment side fails right after that message is committed."""

    def answered() -> None:
        if len(cp.queue) > 1 and cp.queue[1].action == action and not fault.failed:
            payload = cp.queue[1].build(cp)
            fault.armed = event is None or payload.get("eventType") == event

    cp.on_answer = answered


async def order(csms: LiveCsms, auth: dict[str, str], charger_id: str) -> dict[str, Any]:
    body = {"charger_id": charger_id, "evse_id": 1, "amount": 3000}
    r = await csms.http.post("/api/v1/orders", json=body, headers=auth)
    assert r.status_code == 201, r.text
    placed: dict[str, Any] = r.json()
    return placed


async def test_the_end_of_a_transaction_is_billed_after_the_payment_side_failed(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = FailOnce(settlement_service.in_worker)  # type: ignore[attr-defined]
    monkeypatch.setattr(settlement_service, "in_worker", fault)
    async with serve(make_settings(tmp_path, database_url=database_url)) as csms:
        driver = await csms.driver()
        r = await csms.http.post("/api/v1/me/wallet/top-ups", json={"amount": 9000}, headers=driver)
        assert r.status_code == 201, r.text
        billed: dict[str, int] = {}
        for version, end, event in (
            ("1.6", "StopTransaction", None),
            ("2.0.1", "TransactionEvent", "Ended"),
        ):
            charger_id = f"AC{version.replace('.', '')}"
            await csms.add_charger(charger_id, PASSWORD)
            placed = await order(csms, driver, charger_id)
            cp = WireCharger(csms.ws_url(charger_id), charger_id, PASSWORD, version)
            add = cp.transaction16 if version == "1.6" else cp.transaction201
            add("T1", placed["id"], 1, meter=5000, samples=2, step=400)
            arm_before(cp, end, fault, event)
            fault.failed = 0
            await cp.run()
            assert fault.failed == 1
            assert cp.callerrors == [(end, "InternalError")]  # not a CALLRESULT: sent again
            billed[placed["id"]] = ocpp_cost(3 * 400)
            tally.injected("payment side's database lost after the commit")

        # the signed settlement of an offline session, handed over by the charger
        key = generate_key()
        await csms.add_charger("ACSETTLE", PASSWORD)
        r = await csms.http.put(
            "/api/v1/admin/chargers/ACSETTLE/settlement-key", json={"jwk": key.public.to_jwk()}
        )
        assert r.status_code == 200, r.text
        placed = await order(csms, driver, "ACSETTLE")
        auth = read_start_token(placed["start_token"])
        assert isinstance(auth, StartAuthorization)
        token = sign_settlement(
            build_settlement(
                auth,
                audience="qrcharge",
                transaction_id="000001-ac",
                started_at=auth.issued_at,
                stopped_at=auth.issued_at + 30,
                meter_start_wh=0,
                meter_stop_wh=900,
                usage=[UsageBucket(0, 900, 30, 0)],
                reason="EVDisconnected",
                seq=1,
                offline=True,
                issued_at=auth.issued_at + 30,
            ),
            key,
        )
        cp = WireCharger(csms.ws_url("ACSETTLE"), "ACSETTLE", PASSWORD, "2.0.1")
        cp.data_transfer("SettlementKey", json.dumps(key.public.to_jwk()))
        cp.data_transfer("Settlement", token)
        arm_before(cp, "DataTransfer", fault)
        fault.failed = 0
        await cp.run()
        assert fault.failed == 1 and cp.callerrors == [("DataTransfer", "InternalError")]
        assert [a.answer["status"] for a in cp.answered] == ["Accepted", "Accepted"]
        tally.injected("payment side's database lost after the commit")

        payments = dict(await rows(database_url, "SELECT order_id, amount FROM payments"))
        signed = payments.pop(placed["id"])
        assert payments == billed and signed > 0
        await assert_invariants(database_url)


async def test_meter_values_sent_again_after_a_lost_answer_are_stored_once(
    tmp_path: Path, database_url: str
) -> None:
    """A charger that got no answer to a MeterValues sends the same readings again (OCPP has
    no mark for a repeat): each reading of the transaction is stored once."""
    async with serve(make_settings(tmp_path, database_url=database_url)) as csms:
        await csms.add_charger("ACMV", PASSWORD)
        await csms.http.put("/api/v1/admin/id-tags", json={"id_tag": "CARD1"})
        cp = WireCharger(csms.ws_url("ACMV"), "ACMV", PASSWORD, "1.6")
        cp.transaction16("T1", "CARD1", 1, meter=100, samples=3, step=50)
        resent = cp.queue[2]  # the second MeterValues, as sent again after a lost answer
        cp.queue.insert(3, resent)
        cp.queue.insert(4, resent)
        await cp.run()
        stored = await rows(database_url, "SELECT value FROM meter_values ORDER BY value")
        assert [v for (v,) in stored] == [150, 200, 250]
