"""Delivery of the durable outbound queue: in order, with retries and backoff.

The queue rows live in the store (:mod:`charge_point.store`), written in the same commit as the
state change that produced them. :func:`drain` hands them to the version adapter one at a
time, oldest first, and deletes a row only after the CSMS answered it, so a crash can at worst
resend the head row (the CSMS deduplicates).

The retry policy is bounded, so that a CSMS that refuses a message cannot hold the queue (and
every later transaction) forever:

* A CALLERROR (any code) or an invalid CALLRESULT is a failed attempt: the CSMS failed to
  process the row. It waits ``TransactionMessageRetryInterval x attempts`` (seconds) and is
  dropped, logged as an ERROR, after ``TransactionMessageAttempts`` (OCPP 1.6 4.10 / 2.0.1
  E13; 2.0.1 ``OCPPCommCtrlr.MessageAttempts`` / ``MessageAttemptInterval``).
* A ``NotImplemented`` / ``NotSupported`` CALLERROR, or a row that can never be sent (a 1.6
  message of a transaction whose StartTransaction was dropped, so it has no transactionId),
  is dropped at once: no retry can succeed.
* A closed connection or a timeout is not an attempt: no answer says nothing about the CSMS,
  only that the link failed (stalled, or answers lost on the way back). The exception
  propagates, the link ends the connection, and the row is sent again on the next one (the
  CSMS deduplicates what it received). A network fault, however long, never drops a row.

The OCPP 1.6 transactionId rewrite happens at delivery: the StartTransaction answer stores
local id -> CSMS id, and the adapter puts that id into every later MeterValues and
StopTransaction of the transaction, however long they were queued before it was known.
"""

from __future__ import annotations

import logging
from typing import Protocol

from websockets.exceptions import ConnectionClosed

from charge_point.configuration import Configuration
from charge_point.protocol.callerrors import CALL_REFUSED, has_no_handler
from charge_point.store import QueuedMessage, Store

log = logging.getLogger(__name__)


class Deliverer(Protocol):
    """The adapter side: send one row as OCPP and handle the answer, or raise."""

    async def deliver(self, message: QueuedMessage) -> None: ...


class DeliveryRefused(Exception):
    """A row the CSMS answered with something we cannot accept (counts as an attempt), or,
    when ``final``, a row that can never be sent (dropped at once)."""

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


def _hopeless(exc: Exception) -> bool:
    """No retry of the row can succeed."""
    return has_no_handler(exc) or (isinstance(exc, DeliveryRefused) and exc.final)


async def drain(store: Store, config: Configuration, deliverer: Deliverer, now: float) -> list[str]:
    """Delivers queue rows until the queue is empty or the head must wait; returns the kinds
    of the rows delivered (or dropped). ``ConnectionClosed`` and ``TimeoutError`` propagate."""
    done: list[str] = []
    while True:
        head = store.queue_head()
        if head is None or head.not_before > now:
            return done
        try:
            await deliverer.deliver(head)
        except (ConnectionClosed, TimeoutError):
            raise  # the link, not the CSMS: no attempt, the row waits for the next connection
        except (*CALL_REFUSED, DeliveryRefused) as exc:
            attempts = head.attempts + 1
            if _hopeless(exc) or attempts >= config["TransactionMessageAttempts"]:
                log.error(
                    "dropping %s %s after %d attempt(s): %r", head.kind, head.txn, attempts, exc
                )
                store.dequeue(head.seq)
                done.append(head.kind)
                continue
            delay = config["TransactionMessageRetryInterval"] * attempts
            log.warning("%s %s failed (%s), retry in %ss", head.kind, head.txn, exc, delay)
            store.defer(head.seq, attempts, now + delay)
            return done
        store.dequeue(head.seq)
        done.append(head.kind)


def rewritten_transaction_id(store: Store, local_id: str) -> int:
    """The OCPP 1.6 rewrite: the ``transactionId`` the CSMS gave this transaction's
    StartTransaction, for a MeterValues or StopTransaction queued under the local id (maybe
    long before that answer). A transaction whose start was dropped has none: refused."""
    csms_id = store.csms_id(local_id)
    if csms_id is None:
        raise DeliveryRefused(
            f"transaction {local_id} has no CSMS id (its start was dropped)", final=True
        )
    return int(csms_id)


def next_retry_at(store: Store) -> float | None:
    """When the head row may be tried again (None if the queue is empty)."""
    head = store.queue_head()
    return None if head is None else head.not_before
