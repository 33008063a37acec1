"""The hot paths keep their statement budget and, on SQLite, run as one unit of work in the
database thread (docs/benchmarks.md, "After the database thread (D13)"; decision D14).

Each statement costs CPU in SQLAlchemy's execute path, and each hop between the event loop
and the database thread costs a thread hand-over: the number of statements and of hops per
order, settlement and capture is the throughput. A change that adds a lookup, or a unit of
work run statement by statement through the event loop, fails here and has to say why (and
update the figures).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, event

from csms.store import settlements as store_settlements
from csms.store.units_of_work import uses_thread
from tests.csms.payments.conftest import World
from tests.csms.round_trips import RoundTrips, round_trips

# (SQLite, PostgreSQL): the wallet lock carries its reads in RETURNING only on SQLite
# the capture: one more for the receipt number on SQLite (the series counter, an upsert); on
# PostgreSQL the upsert and the receipt's insert are one statement (D101)
# an uploaded settlement's unit also reads whether the order is flagged (its HTTP answer shows
# it): one statement here instead of a pooled session of its own after the unit (D90)
# on PostgreSQL the kept writes go with the next round trip, the COMMIT included, which then
# counts as a statement of its own (the order's, the capture's)
BUDGET = {"order": (6, 8), "settlement": (6, 7), "capture": (8, 10)}
# PostgreSQL round trips: the order's reads together, then the order's row and the wallet lock
# with the reads under it, then the hold's transfer with the COMMIT (D109)
ROUND_TRIPS = {"order": 3, "settlement": 4, "capture": 4}


@dataclass
class Counted:
    """The statements any engine ran (the async engine's and the database thread's own),
    how many units of work the database thread ran, and the round trips to a PostgreSQL
    server (:class:`~tests.csms.round_trips.RoundTrips`)."""

    statements: list[str] = field(default_factory=list)
    units: int = 0
    trips: RoundTrips = field(default_factory=RoundTrips)

    def __len__(self) -> int:
        return len(self.statements)

    @property
    def round_trips(self) -> int:
        return self.trips.count


@contextmanager
def counted(world: World, monkeypatch: pytest.MonkeyPatch | None = None) -> Iterator[Counted]:
    seen = Counted()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.statements.append(statement.split("\n")[0][:80])

    units = world.db.worker.units
    event.listen(Engine, "before_cursor_execute", count)
    try:
        if monkeypatch is None:
            yield seen
        else:
            with round_trips(monkeypatch) as seen.trips:
                yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", count)
        seen.units = world.db.worker.units - units


async def test_order_settlement_and_capture_stay_within_their_statement_budget(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite = world.db.engine.dialect.name == "sqlite"
    assert uses_thread(world.db) == sqlite  # PostgreSQL: the units run on the pool (D14)
    column, hops = (0, 1) if sqlite else (1, 0)
    await world.order()  # the first run of each statement may read the schema: not counted
    trips = {} if sqlite else ROUND_TRIPS
    with counted(world, monkeypatch) as seen:
        order = await world.order()
    assert (len(seen), seen.units) == (BUDGET["order"][column], hops), seen
    assert seen.round_trips == trips.get("order", 0), seen
    with counted(world, monkeypatch) as seen:
        outcome = await world.service.submit(world.settlement(order), source="upload")
    assert (len(seen), seen.units) == (BUDGET["settlement"][column], hops), seen
    assert seen.round_trips == trips.get("settlement", 0), seen
    assert outcome.payment is not None and outcome.payment.id is not None
    with counted(world, monkeypatch) as seen:
        receipt = await world.confirm(outcome.payment.id)
    assert (len(seen), seen.units) == (BUDGET["capture"][column], hops), seen
    assert seen.round_trips == trips.get("capture", 0), seen
    assert receipt.amount == outcome.payment.amount
    # and the work was done: the order is paid and its hold is gone
    assert (await world.reload(order)).status == "paid"


# the OCPP end of a session whose signed settlement came first: the order, the record of the
# transaction (none yet), the transaction's version and id, the order's records, the record
# completed (its row returned by the update), the payment
END_AFTER_SIGNED = 6


async def test_an_ocpp_end_after_its_signed_settlement_stays_within_its_budget(
    world: World,
) -> None:
    """The end that completes a signed session record reads the record back from its own
    conditional update (``RETURNING``), not with a select of its own; on PostgreSQL its reads
    after the order's go out with that one, in one round trip."""
    warm = await world.order()  # the first run of each statement may read the schema
    await world.service.submit(world.settlement(warm, txn="warm-1"), source="upload")
    warmed = await world.transaction(warm, transaction_id="warm-1")
    await world.service.on_transaction_event("ended", warmed)
    order = await world.order()
    outcome = await world.service.submit(world.settlement(order), source="upload")
    facts = await world.transaction(order)
    with counted(world) as seen:
        await world.service.on_transaction_event("ended", facts)
    assert len(seen) == END_AFTER_SIGNED, seen
    if world.db.engine.dialect.name == "postgresql":
        # the reads that follow the order's were queued ahead: they go out in its round trip
        tables = [statement.split(" ")[1].split(".")[0] for statement in seen.statements[:4]]
        assert tables == ["settlements", "transactions", "settlements", "orders"], seen
    async with world.db.session() as session:
        record = await store_settlements.get_record(session, record_id=outcome.record.id or 0)
    assert record is not None
    assert (record.ocpp_transaction_pk, record.ocpp_energy_wh) == (facts.transaction_pk, 10_000)
    assert (await world.reload(order)).status == "settled"
