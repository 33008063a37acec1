"""Authorization block: which id tags may charge (Authorize, and the idTagInfo of starts).

The decision is a hook, :class:`AuthorizationPolicy`. The default, :class:`LocalTagPolicy`,
knows the RFID tags of the ``id_tags`` table and calls every other tag ``Invalid``. Order ids
(the ``jti`` of a start token) are resolved by the payment side's policy, which answers
``Accepted`` with ``expiry`` = the token's ``exp`` (brief 7.11) and falls back to this one for
everything else. A tag is an order id only if such an order exists: the shape of order ids
(``[A-Z0-9]{1,20}``) is also the shape of most RFID card UIDs (``04A1B2C3``), so
:func:`may_be_order_id` only spares the lookup for tags that cannot be one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Connection

from csms.store.db import Database
from csms.store.id_tags import TagRow, tag_row

ORDER_ID = re.compile(r"[A-Z0-9]{1,20}")

# The shared 1.6 AuthorizationStatus / 2.0.1 AuthorizationStatusEnumType values we use.
ACCEPTED = "Accepted"
BLOCKED = "Blocked"
EXPIRED = "Expired"
INVALID = "Invalid"


def may_be_order_id(id_tag: str) -> bool:
    """Whether ``id_tag`` has the shape of an order id. A necessary condition only: card UIDs
    have it too, so whoever treats a tag as an order id must find the order first."""
    return ORDER_ID.fullmatch(id_tag) is not None


@dataclass(frozen=True, slots=True)
class IdTagDecision:
    """The answer for one id tag; ``expiry`` lets the charger's cache drop it in time."""

    status: str
    expiry: datetime | None = None
    known: bool = True  # False: the CSMS has never heard of this tag (flagged on offline starts)

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED


class AuthorizationPolicy(Protocol):
    """Decides on an id tag presented at a charger (Authorize, start, stop).

    A policy may also offer ``authorize_in(conn, charger_id, id_tag)``, the same decision as a
    plain function of a database thread's connection (:data:`InlineDecider`): the transaction
    handlers then decide inside the store writer's unit of work, one hop fewer per start, stop
    and TransactionEvent than a read of its own (decision D21).
    """

    async def authorize(self, charger_id: str, id_tag: str) -> IdTagDecision: ...


InlineDecider = Callable[[Connection, str, str], IdTagDecision]


def inline_decider(policy: AuthorizationPolicy) -> InlineDecider | None:
    """The policy's ``authorize_in``, or None when it has none (it is then asked apart)."""
    decider = getattr(policy, "authorize_in", None)
    return decider if callable(decider) else None


class LocalTagPolicy:
    """Known RFID tags from ``id_tags``; everything else (order ids too) is Invalid."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    async def authorize(self, charger_id: str, id_tag: str) -> IdTagDecision:
        row = await self._db.reader.run(tag_row, id_tag)  # one hop, no pooled session
        return self.decide(row)

    def authorize_in(self, conn: Connection, charger_id: str, id_tag: str) -> IdTagDecision:
        """:meth:`authorize` inside a unit of work (on a database thread)."""
        return self.decide(tag_row(conn, id_tag))

    def decide(self, row: TagRow | None) -> IdTagDecision:
        """The decision for a row of :func:`tag_row` (another policy may read the row in a
        unit of its own and ask this one to decide)."""
        if row is None:
            return IdTagDecision(INVALID, known=False)
        status, expiry = row
        if expiry is not None and expiry <= self._clock():
            return IdTagDecision(EXPIRED, expiry)
        return IdTagDecision(status, expiry)
