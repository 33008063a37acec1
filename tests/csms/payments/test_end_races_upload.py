"""An OCPP end racing the upload of its own signed settlement, on PostgreSQL, where the money
side's units run side by side (on SQLite they run one after the other in the database thread:
no such race). The end reads the order's records, finds none waiting, and inserts a record of
its own: numbered from a later read, a signed record committed in between was missed and the
same session stored twice (session 2, flagged ``second_transaction``, never checked against
the OCPP meter); numbered from the same read, the insert breaks the unique (order, session
number) and the unit runs again, completing the signed record."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from csms.store import settlements as store_settlements
from csms.store.models_orders import OrderFlag, SettlementRecord

from .conftest import Meanwhile, World

pytestmark = pytest.mark.postgres


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """PostgreSQL only (see the module's docstring)."""
    return postgres_url


async def test_an_upload_committed_between_the_end_s_reads_is_one_session(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert world.db.units  # the units run side by side
    order = await world.order()
    token = world.settlement(order)
    facts = await world.transaction(order)
    await world.service.on_transaction_event("started", facts)  # the charger started it
    real = store_settlements.transaction_of
    uploaded = Meanwhile(lambda: world.service.submit(token, source="upload"))

    def upload_meanwhile(session: Any, *, transaction_pk: int) -> Any:
        """Read by the end after the order's records: the upload commits now (once)."""
        uploaded()
        return real(session, transaction_pk=transaction_pk)

    monkeypatch.setattr(store_settlements, "transaction_of", upload_meanwhile)
    await world.service.on_transaction_event("ended", facts)
    async with world.db.session() as session:
        records = (
            await session.exec(
                select(SettlementRecord).where(SettlementRecord.order_id == order.id)
            )
        ).all()
        flags = (await session.exec(select(OrderFlag).where(OrderFlag.order_id == order.id))).all()
    shape = sorted((r.session_no, r.txn, r.ocpp_transaction_pk) for r in records)
    assert uploaded.ran and shape == [(1, "000001-abc", facts.transaction_pk)], shape
    assert [f.kind for f in flags] == []
