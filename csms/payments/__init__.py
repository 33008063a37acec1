"""The hand-off from OCPP to the payment side (orders, settlements, capture).

The CSMS stores every settlement, ``Synced`` report and transaction change first, then tells
a :class:`SettlementSink`. The default :class:`StoreOnlySink` does nothing more; the payment
service of the next issue implements the protocol and is passed to ``create_app``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

SettlementSource = Literal["ocpp", "upload"]
TransactionChange = Literal["started", "updated", "ended"]


@dataclass(frozen=True, slots=True)
class TransactionFacts:
    """What the payment side needs to know about a transaction after a change."""

    charger_id: str
    transaction_id: str
    transaction_pk: int
    id_tag: str | None
    evse_id: int | None
    started_at: datetime | None
    stopped_at: datetime | None
    meter_start_wh: int | None
    meter_stop_wh: int | None
    offline: bool
    stop_reason: str | None


class SettlementSink(Protocol):
    """Receives what chargers report, after it is stored; must not raise for bad input, and
    raises when it could not take what it was given (the charger then sends it again). It is
    told again whenever a charger repeats a message, so it must be idempotent."""

    async def on_settlement(self, charger_id: str, token: str, source: SettlementSource) -> None:
        """A signed settlement token (verify it with the charger's key by (iss, kid))."""
        ...

    async def on_synced(self, charger_id: str, seq: int) -> None:
        """The charger has delivered everything up to settlement ``seq``."""
        ...

    async def on_transaction_event(
        self, change: TransactionChange, facts: TransactionFacts
    ) -> None:
        """A transaction was started, updated or ended (each stored change at least once)."""
        ...


class StoreOnlySink:
    """The default sink: everything is already stored, nothing else happens."""

    async def on_settlement(self, charger_id: str, token: str, source: SettlementSource) -> None:
        return None

    async def on_synced(self, charger_id: str, seq: int) -> None:
        return None

    async def on_transaction_event(
        self, change: TransactionChange, facts: TransactionFacts
    ) -> None:
        return None
