"""Database functions for the stored 2.0.1 TransactionEvents (a plain function of a
connection, on a database thread)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection

from csms.store.fast import Fast
from csms.store.models import TransactionEventRecord
from csms.store.writer import table_of

EVENTS = table_of(TransactionEventRecord)
_UNDER_SEQ_NO = Fast(
    core_select(
        EVENTS.c.digest,
        EVENTS.c.event_type,
        EVENTS.c.trigger_reason,
        EVENTS.c.timestamp,
        EVENTS.c.offline,
        EVENTS.c.response,
    ).where(
        EVENTS.c.charger_id == bindparam("cid"),
        EVENTS.c.transaction_id == bindparam("tid"),
        EVENTS.c.seq_no == bindparam("seq"),
    )
)


def events_under_seq_no(
    conn: Connection, *, charger_id: str, transaction_id: str, seq_no: int
) -> list[tuple[Any, ...]]:
    """``(digest, event_type, trigger_reason, timestamp, offline, response)`` of every event
    stored under the charger's (transactionId, seqNo): one indexed read."""
    return _UNDER_SEQ_NO.all(conn, {"cid": charger_id, "tid": transaction_id, "seq": seq_no})
