"""A capture racing a revision of its payment's amount, on PostgreSQL, where the money side's
units run side by side (on SQLite they run one after the other in the database thread: no
such race). The capture reads the payment (its amount) and then steps it ``pending ->
captured``; a later copy of the session (the OCPP end, whose meter saw less) revises the
pending amount in between. A step conditional on the status alone still matched, and the
capture moved the amount it had read: the ledger and the receipt said one amount, the
payment another."""

from __future__ import annotations

from typing import Any

import pytest

from csms.store import payments as store_payments

from .conftest import FUNDS, Meanwhile, World

pytestmark = pytest.mark.postgres


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """PostgreSQL only (see the module's docstring)."""
    return postgres_url


async def test_a_revision_committed_after_the_capture_read_its_payment_is_what_it_captures(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert world.db.units  # the units run side by side
    order = await world.order(amount=5000)
    token = world.settlement(order, wh=10_000)
    facts = await world.transaction(order, wh=8_000)  # the OCPP meter saw less
    outcome = await world.service.submit(token, source="upload")
    assert outcome.payment is not None and outcome.payment.id is not None
    assert outcome.payment.amount == 1215  # the signed amount, for now
    real = store_payments.capture_rows
    revised = Meanwhile(lambda: world.service.on_transaction_event("ended", facts))

    def revise_meanwhile(session: Any, *, payment_id: int) -> Any:
        """The capture has read the payment: the OCPP end revises it now (once)."""
        found = real(session, payment_id=payment_id)
        revised()
        return found

    monkeypatch.setattr(store_payments, "capture_rows", revise_meanwhile)
    receipt = await world.confirm(outcome.payment.id)
    (payment,) = await world.payments(order)
    assert revised.ran
    # signed 12.15; OCPP 8 kWh * 1.20 + 0.5 h * 0.30 = 9.75: the lower one is charged
    assert (payment.status, payment.amount) == ("captured", 975)
    assert receipt.amount == 975
    assert await world.available() == FUNDS - 975
