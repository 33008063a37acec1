"""The interfaces between the OCPP side and the money side, so that neither imports the other.

:mod:`csms.protocol` stores what chargers report and then tells a :class:`SettlementSink` (a
settlement token it hands over unread: the money side reads and stores it); it
asks an :class:`AuthorizationPolicy` whether an id tag may charge. :mod:`csms.payments`
implements both (the settlement service, the order-id policy) and is handed to the protocol
through :class:`~csms.context.CsmsContext`, built by :mod:`csms.app`. The services the web side
reaches through the context are described here too (:class:`AccessTokens`,
:class:`LoginGuard`, :class:`BackgroundJob`), so that the context names no upper layer.

This module imports nothing of :mod:`csms`: everything else may import it.

Order ids and RFID tags share one namespace: an order id (the ``jti`` of a start token) is
presented at the charger as its id tag. The shape of order ids (``[A-Z0-9]{1,20}``) is also
the shape of most RFID card UIDs (``04A1B2C3``), so :func:`may_be_order_id` only spares the
lookup for tags that cannot be one; a tag is an order id only if such an order exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, cast

from sqlalchemy.engine import Connection

from qr_extension.refusal import Refusal

# -- settlements and transactions: what protocol tells the money side ---------------------------

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
    """Receives what chargers report; must not raise for bad input, and raises when it could
    not take what it was given (the charger then sends it again). It is told again whenever a
    charger repeats a message, so it must be idempotent."""

    async def on_settlement(
        self, charger_id: str, token: str, source: SettlementSource
    ) -> Refusal | None:
        """A signed settlement token as received, not read yet: the sink reads, stores and
        verifies it. None when it is taken (kept, even if refused as evidence); the refusal
        when it is not taken at all (unreadable, or naming another charger than its sender)."""
        ...

    async def on_synced(self, charger_id: str, seq: int) -> None:
        """The charger has delivered everything up to settlement ``seq``."""
        ...

    async def on_transaction_event(
        self, change: TransactionChange, facts: TransactionFacts
    ) -> None:
        """A transaction was started, updated or ended (each stored change at least once)."""
        ...


class InlineStarts(Protocol):
    """What a sink may also offer: marking an order's transaction started inside the store
    writer's unit of work that stores the transaction (its own commit), instead of a unit of
    work of its own after it. The order is then started exactly when its transaction is
    stored: no window where a congested store answers the charger's start and loses the
    order's (the end would mark it, but the order shows unused until then).

    ``started_in`` runs in the database thread for a start or an update of a transaction on
    its order's own charger: True when the order is stored started (now, or already), so the
    sink need not be told of this event; False when it must be told after the commit as
    before (an order in a state the sink handles itself). ``started_stored`` is called after
    the commit of a unit whose ``started_in`` said True (a sink may remember the order)."""

    def started_in(self, conn: Connection, facts: TransactionFacts) -> bool: ...

    def started_stored(self, facts: TransactionFacts) -> None: ...


def inline_starts(sink: SettlementSink) -> InlineStarts | None:
    """The sink itself when it offers :class:`InlineStarts`, else None."""
    if callable(getattr(sink, "started_in", None)) and callable(
        getattr(sink, "started_stored", None)
    ):
        return cast(InlineStarts, sink)
    return None


class StoreOnlySink:
    """A sink that takes everything and keeps nothing more than the protocol stored itself
    (its settlements are not kept: that is the money side's)."""

    async def on_settlement(
        self, charger_id: str, token: str, source: SettlementSource
    ) -> Refusal | None:
        return None

    async def on_synced(self, charger_id: str, seq: int) -> None:
        return None

    async def on_transaction_event(
        self, change: TransactionChange, facts: TransactionFacts
    ) -> None:
        return None


# -- authorization: which id tags may charge (Authorize, and the idTagInfo of starts) -----------

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
    and TransactionEvent than a read of its own. With it, ``authorize_ahead(conn, id_tag)``
    (:data:`InlineAhead`) may queue the reads ``authorize_in`` will make ahead (see
    :meth:`csms.store.fast.Fast.ahead`), so that they go with the unit's first read.
    """

    async def authorize(self, charger_id: str, id_tag: str) -> IdTagDecision: ...


InlineDecider = Callable[[Connection, str, str], IdTagDecision]


def inline_decider(policy: AuthorizationPolicy) -> InlineDecider | None:
    """The policy's ``authorize_in``, or None when it has none (it is then asked apart)."""
    decider = getattr(policy, "authorize_in", None)
    return decider if callable(decider) else None


InlineAhead = Callable[[Connection, str], None]


def inline_ahead(policy: AuthorizationPolicy) -> InlineAhead | None:
    """The policy's ``authorize_ahead``, or None when it has none (or no ``authorize_in``)."""
    ahead = getattr(policy, "authorize_ahead", None)
    return ahead if callable(ahead) and inline_decider(policy) is not None else None


# -- the services the web side and the app reach through the context --------------------------


class AccessTokens(Protocol):
    """Issues and verifies drivers' access tokens (:class:`csms.drivers.tokens.DriverTokens`)."""

    @property
    def ttl_s(self) -> int: ...

    def issue(self, user_id: int, *, now: int, generation: int = 0) -> str: ...

    def device_mark(self, email: str) -> str: ...

    def is_device_mark(self, email: str, value: str | None) -> bool: ...

    def verify_access(self, token: str, *, now: int) -> tuple[int, int]: ...


class LoginGuard(Protocol):
    """Holds back failed log-ins per email and client, in this process or in Redis
    (:class:`csms.drivers.throttle.LocalLogins`,
    :class:`csms.drivers.throttle.SharedLoginThrottle`)."""

    async def check(
        self, email: str, client: str | None, *, known_device: bool = False
    ) -> None: ...

    async def failed(self, email: str, client: str | None) -> None: ...

    async def succeeded(self, email: str, client: str | None) -> None: ...


class BackgroundJob(Protocol):
    """A service with a loop of its own (the reaper); the app runs it as a task it owns, on
    the node that leads the cluster (:mod:`csms.cluster.leader`)."""

    async def run(self) -> None: ...


# --- the payment provider (a PSP adapter implements it; see csms.payments.provider) ------

PspKind = Literal["authorize", "capture", "void", "refund"]
PspStatus = Literal["succeeded", "declined"]


@dataclass(frozen=True, slots=True)
class PspResult:
    """A provider's answer: its reference for the operation, the outcome, the amount."""

    kind: PspKind
    reference: str
    status: PspStatus
    amount: int
    currency: str


class PaymentProvider(Protocol):
    """Authorize, capture, void, refund, each idempotent by ``key``; and the lookup of a key."""

    @property
    def name(self) -> str: ...

    async def authorize(
        self, *, amount: int, currency: str, method: str, key: str
    ) -> PspResult: ...

    async def capture(self, *, authorization: str, amount: int, key: str) -> PspResult: ...

    async def void(self, *, authorization: str, key: str) -> PspResult: ...

    async def refund(self, *, capture: str, amount: int, key: str) -> PspResult: ...

    async def lookup(self, key: str) -> PspResult | None:
        """What the call made with ``key`` did; None if the provider never received one and
        never will act on one sent before now (raise while that is not certain)."""
        ...
