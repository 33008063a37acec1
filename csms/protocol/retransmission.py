"""Whether a 2.0.1 TransactionEvent was received before, and whether it is the same event.

A charger that gets no answer sends the event again: a *retransmission*, answered from the
store as the first time, with nothing stored or decided again. Some chargers also reuse a
``seqNo`` for a *different* event (an ``Ended`` under the ``Started``'s number): that one is
news, and is processed (and flagged) rather than taken for a repeat and lost.

"The same event" means the same in everything the CSMS reads from it: event type, timestamp
(as an instant), trigger reason, offline, id token, EVSE and connector, stopped reason, and
every sampled value (instant, value, measurand, phase, unit, context, location). Its
:func:`event_digest` is stored with the event row (``transaction_events.digest``, unique with
the charger, transaction and seqNo), so the check is one read of the rows under that seqNo,
made only when some may exist: an event whose seqNo is above its transaction's
``last_seq_no`` (the in-order event) has none (:func:`csms.protocol.transactions._may_be_stored`).
Rows stored before digests were kept (``digest`` "") are compared on the columns they have.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from csms.store.transaction_events import events_under_seq_no

if TYPE_CHECKING:
    from csms.protocol.transactions import TransactionEvent


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def event_digest(ev: TransactionEvent) -> str:
    """sha256 (hex) of the event's content, transaction id and seqNo aside (they are the key)."""
    content: list[Any] = [
        ev.event_type,
        _instant(ev.timestamp),
        ev.trigger_reason,
        ev.offline,
        ev.id_token,
        ev.evse_id,
        ev.connector_id,
        ev.stopped_reason,
        [
            [_instant(s.timestamp), s.value, s.measurand, s.phase, s.unit, s.context, s.location]
            for s in ev.samples
        ],
    ]
    text = json.dumps(content, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Earlier:
    """What a (charger, transactionId, seqNo) already holds for one event.

    ``answer``: the answer given to this very event (a retransmission), else None.
    ``others``: the types of the different events stored under that seqNo (empty when the
    seqNo is new): a non-empty one with no ``answer`` means the seqNo was reused.
    """

    answer: str | None = None
    others: Sequence[str] = ()


def earlier(conn: Connection, charger_id: str, ev: TransactionEvent, digest: str) -> Earlier:
    """What was stored under the event's seqNo (one indexed read, on a database thread)."""
    rows = events_under_seq_no(
        conn, charger_id=charger_id, transaction_id=ev.transaction_id, seq_no=ev.seq_no
    )
    for stored_digest, event_type, trigger_reason, timestamp, offline, response in rows:
        if stored_digest:
            same = stored_digest == digest
        else:  # stored before digests were kept
            same = (event_type, trigger_reason, timestamp, bool(offline)) == (
                ev.event_type,
                ev.trigger_reason,
                ev.timestamp,
                ev.offline,
            )
        if same:
            return Earlier(answer=str(response))
    return Earlier(others=tuple(str(row[1]) for row in rows))
