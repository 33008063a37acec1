"""Database functions of payment-provider attempts (``psp_attempts``) and of the provider calls
recorded for them (``psp_operations``).

Exactly once by the database, never check-then-insert: an attempt is created with
``INSERT ... ON CONFLICT DO NOTHING`` on its unique key and then read back (two requests with
one key share one row); its outcome is a conditional update that names the states it may
leave, so of two processes finishing one attempt exactly one changes the row and the other
sees that it lost (:func:`move`). A provider call is recorded once per key the same way.

Synchronous: every function runs inside a unit of work
(:func:`~csms.store.units_of_work.in_worker`) on its :class:`~sqlmodel.Session`, and none
commits.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from csms.store.models_money import PspAttempt, PspOperation

__all__ = [
    "by_key",
    "create",
    "get",
    "move",
    "record_operation",
    "set_transfer",
    "stale",
    "touch",
]


def _insert_or_nothing(session: Session, table: Any, values: dict[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.exec(insert(table).values(**values).on_conflict_do_nothing())


def create(
    session: Session,
    *,
    key: str,
    kind: str,
    provider: str,
    user_id: int,
    amount: int,
    currency: str,
    method: str,
    state: str,
    transfer_id: int | None,
    now: datetime,
) -> PspAttempt:
    """The attempt of ``key``: inserted with these values unless one exists (then that one,
    whatever its values: the caller compares)."""
    _insert_or_nothing(
        session,
        PspAttempt,
        {
            "idempotency_key": key,
            "kind": kind,
            "provider": provider,
            "user_id": user_id,
            "amount": amount,
            "currency": currency,
            "method": method,
            "state": state,
            "detail": "",
            "transfer_id": transfer_id,
            "created_at": now,
            "updated_at": now,
        },
    )
    found = by_key(session, key)
    assert found is not None  # inserted or there before, in this transaction's view
    return found


def by_key(session: Session, key: str) -> PspAttempt | None:
    rows = session.exec(
        select(PspAttempt)
        .where(col(PspAttempt.idempotency_key) == key)
        .execution_options(populate_existing=True)
    )
    return rows.first()


def get(session: Session, attempt_id: int) -> PspAttempt | None:
    rows = session.exec(
        select(PspAttempt)
        .where(col(PspAttempt.id) == attempt_id)
        .execution_options(populate_existing=True)
    )
    return rows.first()


def move(
    session: Session,
    *,
    attempt_id: int,
    from_states: Collection[str],
    to_state: str,
    now: datetime,
    reference: str | None = None,
    detail: str = "",
) -> bool:
    """Moves the attempt to ``to_state`` if it is in one of ``from_states``; whether it did.

    The update takes the row's lock (PostgreSQL) or the database's write lock (SQLite): a
    concurrent mover waits, then finds the state changed and moves nothing."""
    values: dict[str, Any] = {"state": to_state, "updated_at": now, "detail": detail[:200]}
    if reference is not None:
        values["reference"] = reference
    result = session.exec(
        update(PspAttempt)
        .where(col(PspAttempt.id) == attempt_id, col(PspAttempt.state).in_(list(from_states)))
        .values(**values)
    )
    return bool(result.rowcount == 1)


def touch(session: Session, *, attempt_id: int, states: Collection[str], now: datetime) -> bool:
    """Marks an open attempt as being worked on now (the sweeper leaves it alone for a while);
    whether it was still in one of ``states``."""
    result = session.exec(
        update(PspAttempt)
        .where(col(PspAttempt.id) == attempt_id, col(PspAttempt.state).in_(list(states)))
        .values(updated_at=now)
    )
    return bool(result.rowcount == 1)


def set_transfer(session: Session, *, attempt_id: int, transfer_id: int) -> None:
    session.exec(
        update(PspAttempt).where(col(PspAttempt.id) == attempt_id).values(transfer_id=transfer_id)
    )


def stale(
    session: Session,
    *,
    provider: str,
    states: Collection[str],
    before: datetime,
    limit: int,
) -> list[PspAttempt]:
    """``provider``'s attempts in ``states`` that nobody worked on since ``before``, oldest
    first (only the provider an attempt was made through can answer for it)."""
    rows = session.exec(
        select(PspAttempt)
        .where(
            col(PspAttempt.provider) == provider,
            col(PspAttempt.state).in_(list(states)),
            col(PspAttempt.updated_at) < before,
        )
        .order_by(col(PspAttempt.updated_at), col(PspAttempt.id))
        .limit(limit)
    )
    return list(rows.all())


def record_operation(
    session: Session,
    *,
    provider: str,
    kind: str,
    key: str,
    status: str,
    amount: int,
    currency: str,
    reference: str,
    user_id: int | None,
    now: datetime,
) -> int:
    """Records a provider call's answer once per ``key`` (a repeat keeps the first record);
    returns the row id."""
    _insert_or_nothing(
        session,
        PspOperation,
        {
            "provider": provider,
            "kind": kind,
            "idempotency_key": key,
            "status": status,
            "amount": amount,
            "currency": currency,
            "reference": reference,
            "user_id": user_id,
            "created_at": now,
        },
    )
    rows = session.exec(select(PspOperation.id).where(col(PspOperation.idempotency_key) == key))
    found = rows.first()
    assert found is not None
    return found
