"""The authorization policy for order ids, falling back to local RFID tags.

An order id presented at the charger it was issued for is ``Accepted`` with ``expiry`` = the
start token's ``exp``, so the charger's authorisation cache drops it when the token would no
longer start anything. An unused order whose token (with leeway) has expired is ``Expired``; a
cancelled one (by the operator or the driver) is ``Invalid``. At any other charger an order id
is answered exactly as a tag nobody knows (``Invalid``, no expiry): another charger learns
nothing of it, not even that it exists. Whatever the answer, the transactions block still
records a start reported late (the energy was delivered): this only decides the ``idTagInfo``.
Tags that are not orders go to the CSMS's :class:`LocalTagPolicy`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from csms.id_tags import LocalTagPolicy
from csms.payments.lifecycle import OrderState
from csms.ports import (
    ACCEPTED,
    EXPIRED,
    INVALID,
    AuthorizationPolicy,
    IdTagDecision,
    InlineDecider,
    inline_ahead,
    inline_decider,
    may_be_order_id,
)
from csms.store import orders as store_orders
from csms.store.db import Database
from csms.store.id_tags import TagRow


class OrderAuthorizationPolicy:
    """:class:`AuthorizationPolicy` that knows orders; everything else goes to ``fallback``."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime],
        leeway_s: int,
        fallback: AuthorizationPolicy,
    ) -> None:
        self._db = db
        self._clock = clock
        self._leeway = timedelta(seconds=leeway_s)
        self._fallback = fallback
        # decided inside the caller's unit of work when the fallback can be too: the transaction
        # handlers then need no separate read before their write
        self._fallback_in = inline_decider(fallback)
        # the local tag policy's row is read with the order's, in the same statement
        self._local = fallback if isinstance(fallback, LocalTagPolicy) else None
        self.authorize_in: InlineDecider | None = (
            self._authorize_in if self._fallback_in is not None else None
        )

    def authorize_ahead(self, conn: Connection, id_tag: str) -> None:
        """Queues the reads :meth:`_authorize_in` makes first (:data:`~csms.ports.InlineAhead`)."""
        if not may_be_order_id(id_tag):
            ahead = inline_ahead(self._fallback)
            if ahead is not None:
                ahead(conn, id_tag)
            return
        store_orders.authorization_ahead(conn, id_tag=id_tag, with_tag=self._local is not None)

    def _authorize_in(self, conn: Connection, charger_id: str, id_tag: str) -> IdTagDecision:
        assert self._fallback_in is not None
        if not may_be_order_id(id_tag):
            return self._fallback_in(conn, charger_id, id_tag)
        if self._local is not None:
            order, tag = store_orders.order_and_tag_rows(conn, id_tag=id_tag)
            if order is None:
                return self._local.decide(tag)
            return self._decide_order(order, charger_id)
        order = store_orders.authorization_row(conn, order_id=id_tag)
        if order is None:
            return self._fallback_in(conn, charger_id, id_tag)
        return self._decide_order(order, charger_id)

    async def authorize(self, charger_id: str, id_tag: str) -> IdTagDecision:
        if not may_be_order_id(id_tag):
            return await self._fallback.authorize(charger_id, id_tag)
        # one hop to the reader thread (a pooled session per start starved the pool under
        # load); with the local tag policy behind, its row is read in the same hop
        local = self._fallback if isinstance(self._fallback, LocalTagPolicy) else None
        order, tag = await self._db.reader.run(_order_and_tag, id_tag, local is not None)
        if order is None:
            if local is not None:
                return local.decide(tag)
            return await self._fallback.authorize(charger_id, id_tag)
        return self._decide_order(order, charger_id)

    def _decide_order(self, order: tuple[str, str, datetime], charger_id: str) -> IdTagDecision:
        order_charger, status, expires_at = order
        if order_charger != charger_id:
            return IdTagDecision(INVALID)  # what an unknown tag gets: nothing about the order
        if status in (OrderState.CANCELLED, OrderState.CANCELLING):
            return IdTagDecision(INVALID, expires_at)
        unused = status in (OrderState.CREATED, OrderState.EXPIRED)
        if unused and self._clock() > expires_at + self._leeway:
            return IdTagDecision(EXPIRED, expires_at)
        return IdTagDecision(ACCEPTED, expires_at)


def _order_and_tag(
    conn: Connection, id_tag: str, with_tag: bool
) -> tuple[tuple[str, str, datetime] | None, TagRow | None]:
    """The order ``id_tag`` names, else (``with_tag``) the local RFID tag's row."""
    if with_tag:
        order, tag = store_orders.order_and_tag_rows(conn, id_tag=id_tag)
        return order, None if order is not None else tag
    return store_orders.authorization_row(conn, order_id=id_tag), None
