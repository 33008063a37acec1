"""The lifecycle of a charging transaction as the CSMS stores it: ``{state: {event: next_state}}``.

A transaction is ``Started`` or ``Ended`` (the ``transactions.state`` column); ``Unseen`` is the
state before its first message is stored. The events are the messages of both versions, after
the handler has told a repeat from news:

* ``StartTransaction`` (1.6) always makes a new transaction: a start the CSMS has seen (same
  fingerprint) is a ``repeat``.
* ``StopTransaction`` (1.6) ends a started transaction, or stores an unknown one as ended
  (flagged ``unknown_transaction``); a stop of an ended transaction is a ``repeat``, so the
  first stop's time and meter stay.
* 2.0.1 ``Started`` / ``Updated`` / ``Ended`` events are applied in any state (queued offline,
  they come late and out of order): an ``Ended`` ends the transaction, nothing reopens it, and a
  transaction first seen by an ``Updated`` or ``Ended`` is flagged ``no_started_event``. An
  event equal to one stored under its seqNo is a ``repeat`` (answered from the stored event,
  before the transaction is read).
* ``repeat``: the same message again, changing nothing; there is nothing to repeat in
  ``Unseen``.

Nothing of this is refused to the charger (the energy was delivered: what looks wrong is
stored and flagged); :class:`IllegalTransition` is the CSMS's own mistake, a step the handlers
must never make. Offline delivery is a flag (``offline``, ``late_start``), not a state. The
table is drawn in docs/architecture.md, "Transactions".
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from csms.errors import IllegalTransition


class TxnState(StrEnum):
    """A value of ``transactions.state``, or ``Unseen`` before there is a row."""

    UNSEEN = "Unseen"  # nothing stored yet; never in the column
    STARTED = "Started"
    ENDED = "Ended"


class TxnEvent(StrEnum):
    """A message of either version; a 2.0.1 event's value is its ``eventType``."""

    START = "StartTransaction"  # 1.6, a start not seen before
    STOP = "StopTransaction"  # 1.6, of a transaction not ended (or unknown)
    STARTED = "Started"  # 2.0.1 TransactionEvent, news (not a retransmission)
    UPDATED = "Updated"
    ENDED = "Ended"
    REPEAT = "repeat"  # the same message again


S, E = TxnState, TxnEvent
TRANSITIONS: Final[dict[TxnState, dict[TxnEvent, TxnState]]] = {
    S.UNSEEN: {E.START: S.STARTED, E.STOP: S.ENDED,
               E.STARTED: S.STARTED, E.UPDATED: S.STARTED, E.ENDED: S.ENDED},
    S.STARTED: {E.STOP: S.ENDED,
                E.STARTED: S.STARTED, E.UPDATED: S.STARTED, E.ENDED: S.ENDED,
                E.REPEAT: S.STARTED},
    S.ENDED: {E.STARTED: S.ENDED, E.UPDATED: S.ENDED, E.ENDED: S.ENDED,
              E.REPEAT: S.ENDED},
}  # fmt: skip


def next_state(state: str, event: str) -> TxnState:
    """The transaction's state after ``event``; IllegalTransition if the table has no such
    step (an unknown state or event included)."""
    try:
        return TRANSITIONS[TxnState(state)][TxnEvent(event)]
    except (KeyError, ValueError):
        raise IllegalTransition("transaction", str(state), str(event)) from None
