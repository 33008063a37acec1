"""The ``transactions`` and ``transaction_events`` tables as the OCPP hot path uses them.

Functions of the store writer's connection (they run inside its group's unit of work), on
prebuilt :class:`~csms.store.fast.Fast` statements with bind parameters: building a statement
per call (coercions, cache key) cost more than SQLite takes to run it. Rows are read into
:class:`TxnRow`, a plain object, not the SQLModel instance (its instrumentation cost more
than the statements did).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, bindparam, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection

from csms.store.fast import Fast
from csms.store.models import Transaction, TransactionEventRecord
from csms.store.models_orders import Order
from csms.store.types import utcnow
from csms.store.writer import table_of

TRANSACTIONS = table_of(Transaction)
EVENTS = table_of(TransactionEventRecord)
_ORDERS = table_of(Order)
_FIELDS = tuple(c.name for c in TRANSACTIONS.columns if c.name != "id")


@dataclass(slots=True)
class TxnRow:
    """A ``transactions`` row as the hot path reads and changes it. Its fields are the
    table's columns (a test holds them equal)."""

    charger_id: str
    transaction_id: str
    ocpp_version: str
    id: int | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    id_tag: str | None = None
    id_tag_status: str | None = None
    start_key: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    meter_start_wh: int | None = None
    meter_stop_wh: int | None = None
    stop_reason: str | None = None
    state: str = "Started"  # the column's default (Started | Ended)
    offline: bool = False
    flags: str = ""
    last_seq_no: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


_BY_ID = Fast(
    core_select(TRANSACTIONS)
    .where(
        TRANSACTIONS.c.charger_id == bindparam("cid"),
        TRANSACTIONS.c.transaction_id == bindparam("tid"),
    )
    .limit(1)
)
# the row and, in the same read, the charger of the order its tag names (NULL: none)
_WITH_OWNER = Fast(
    core_select(TRANSACTIONS, _ORDERS.c.charger_id.label("order_charger"))
    .select_from(TRANSACTIONS.outerjoin(_ORDERS, _ORDERS.c.id == TRANSACTIONS.c.id_tag))
    .where(
        TRANSACTIONS.c.charger_id == bindparam("cid"),
        TRANSACTIONS.c.transaction_id == bindparam("tid"),
    )
    .limit(1)
)
_BY_START_KEY = Fast(
    core_select(TRANSACTIONS)
    .where(
        TRANSACTIONS.c.charger_id == bindparam("cid"), TRANSACTIONS.c.start_key == bindparam("key")
    )
    .limit(1)
)
_INSERT = Fast(
    TRANSACTIONS.insert()
    .values({name: bindparam(f"v_{name}") for name in _FIELDS})
    .returning(TRANSACTIONS.c.id)
)
_UPDATE = Fast(
    update(TRANSACTIONS)
    .where(TRANSACTIONS.c.id == bindparam("pk"))
    .values({name: bindparam(f"v_{name}") for name in _FIELDS})
)
_OTHER_WITH_TAG = Fast(
    core_select(TRANSACTIONS.c.id)
    .where(
        TRANSACTIONS.c.charger_id == bindparam("cid"),
        TRANSACTIONS.c.id_tag == bindparam("tag"),
        TRANSACTIONS.c.id != bindparam("pk"),
    )
    .limit(1)
)


def pk_by_id_query(charger: str, tid: str) -> Select[tuple[int]]:
    """The row id of a charger's transaction by its OCPP id; ``charger`` and ``tid`` name the
    bound parameters (a statement of its own here, a subquery of the meter readings' insert)."""
    return (
        core_select(TRANSACTIONS.c.id)
        .where(
            TRANSACTIONS.c.charger_id == bindparam(charger),
            TRANSACTIONS.c.transaction_id == bindparam(tid),
        )
        .limit(1)
    )


def open_on_evse_query(charger: str, evse: str) -> Select[tuple[int]]:
    """The row id of the newest started transaction of a charger's EVSE (parameters named as
    in :func:`pk_by_id_query`)."""
    return (
        core_select(TRANSACTIONS.c.id)
        .where(
            TRANSACTIONS.c.charger_id == bindparam(charger),
            TRANSACTIONS.c.evse_id == bindparam(evse),
            TRANSACTIONS.c.state == "Started",
        )
        .order_by(TRANSACTIONS.c.id.desc())
        .limit(1)
    )


_PK_BY_ID = Fast(pk_by_id_query("cid", "tid"))
_OPEN_ON_EVSE = Fast(open_on_evse_query("cid", "evse"))
_EVENT_FIELDS = (
    "charger_id",
    "transaction_id",
    "seq_no",
    "event_type",
    "trigger_reason",
    "timestamp",
    "offline",
    "response",
    "received_at",
    "digest",
)
_INSERT_EVENT = Fast(  # a kept write: inline, no implicit RETURNING id that nothing reads
    EVENTS.insert().values({name: bindparam(name) for name in _EVENT_FIELDS}).inline()
)
_ORDER_CHARGER = Fast(
    core_select(_ORDERS.c.charger_id).where(_ORDERS.c.id == bindparam("tag")), stable=True
)
"""An order's charger is written with the order and never changed: read ahead, it stays
valid across the unit's writes."""
_TXN_COLUMNS = _BY_ID.columns


def by_transaction_id(conn: Connection, *, charger_id: str, transaction_id: str) -> TxnRow | None:
    """The charger's transaction with the OCPP ``transaction_id``, or None."""
    row = _BY_ID.first(conn, {"cid": charger_id, "tid": transaction_id})
    return None if row is None else TxnRow(**dict(zip(_TXN_COLUMNS, row, strict=True)))


def with_order_charger(
    conn: Connection, *, charger_id: str, transaction_id: str
) -> tuple[TxnRow, str | None] | None:
    """Like :func:`by_transaction_id`, with the charger of the order whose id is the row's
    tag (None when it names no order) from the same read: what :func:`order_charger` of
    that tag would answer, without a statement of its own."""
    row = _WITH_OWNER.first(conn, {"cid": charger_id, "tid": transaction_id})
    if row is None:
        return None
    txn = TxnRow(**dict(zip(_TXN_COLUMNS, row[:-1], strict=True)))
    return txn, None if row[-1] is None else str(row[-1])


def with_order_charger_ahead(conn: Connection, *, charger_id: str, transaction_id: str) -> None:
    """Queues :func:`with_order_charger`'s read with the unit's next round trip."""
    _WITH_OWNER.ahead(conn, {"cid": charger_id, "tid": transaction_id})


def by_start_key(conn: Connection, *, charger_id: str, start_key: str) -> TxnRow | None:
    """The charger's 1.6 transaction started by the StartTransaction of ``start_key``."""
    row = _BY_START_KEY.first(conn, {"cid": charger_id, "key": start_key})
    return None if row is None else TxnRow(**dict(zip(_TXN_COLUMNS, row, strict=True)))


def by_start_key_ahead(conn: Connection, *, charger_id: str, start_key: str) -> None:
    """Queues :func:`by_start_key`'s read with the connection's next round trip (see
    :meth:`~csms.store.fast.Fast.ahead`), for a unit that reads the tag's decision first."""
    _BY_START_KEY.ahead(conn, {"cid": charger_id, "key": start_key})


def save(conn: Connection, txn: TxnRow) -> None:
    """Inserts (and sets ``txn.id``) or updates the row: Core, no ORM session. The update is
    a kept write (sent with the unit's next round trip where writes are pipelined): the row
    is the charger's, found by its id, so nothing waits for its row count."""
    values = {f"v_{name}": getattr(txn, name) for name in _FIELDS}
    if txn.id is None:
        txn.id = _INSERT.scalar(conn, values)
    else:
        values["pk"] = txn.id
        _UPDATE.later(conn, values)


def another_with_tag(conn: Connection, *, charger_id: str, id_tag: str, pk: int | None) -> bool:
    """Whether the charger has a transaction with ``id_tag`` other than the one of ``pk``."""
    params = {"cid": charger_id, "tag": id_tag, "pk": pk}
    return _OTHER_WITH_TAG.scalar(conn, params) is not None


def pk_of(conn: Connection, *, charger_id: str, transaction_id: str) -> int | None:
    """The primary key of the charger's transaction with the OCPP ``transaction_id``."""
    pk: int | None = _PK_BY_ID.scalar(conn, {"cid": charger_id, "tid": transaction_id})
    return pk


def open_on_evse(conn: Connection, *, charger_id: str, evse_id: int) -> int | None:
    """The primary key of the newest transaction of the EVSE that is not ended, or None."""
    pk: int | None = _OPEN_ON_EVSE.scalar(conn, {"cid": charger_id, "evse": evse_id})
    return pk


def insert_event(
    conn: Connection,
    *,
    charger_id: str,
    transaction_id: str,
    seq_no: int,
    event_type: str,
    trigger_reason: str,
    timestamp: datetime,
    offline: bool,
    response: str,
    received_at: datetime,
    digest: str,
) -> None:
    """Stores one 2.0.1 TransactionEvent with the answer it was given (its ``response``), as
    a kept write: a copy stored meanwhile breaks the unique seqNo at the unit's next round
    trip or its commit, which fails the unit all the same (the caller's IntegrityError)."""
    _INSERT_EVENT.later(
        conn,
        {
            "charger_id": charger_id,
            "transaction_id": transaction_id,
            "seq_no": seq_no,
            "event_type": event_type,
            "trigger_reason": trigger_reason,
            "timestamp": timestamp,
            "offline": offline,
            "response": response,
            "received_at": received_at,
            "digest": digest,
        },
    )


def order_charger_ahead(conn: Connection, *, order_id: str) -> None:
    """Queues :func:`order_charger`'s read with the unit's next round trip (a stable read
    ahead: still served after the unit's writes)."""
    _ORDER_CHARGER.ahead(conn, {"tag": order_id})


def order_charger(conn: Connection, *, order_id: str) -> str | None:
    """The charger the order ``order_id`` was issued for, or None when there is no such order
    (one primary-key read: a transaction is bound to an order by its id tag)."""
    found = _ORDER_CHARGER.scalar(conn, {"tag": order_id})
    return None if found is None else str(found)
