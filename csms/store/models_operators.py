"""The operator side's tables: named staff accounts, their sign-in sessions, and the audit
log of every state-changing operator request.

A session row holds the sha256 of an opaque bearer token, never the token: signing out deletes
the row, disabling an account deletes all of its rows, so a token stops working at once in
every CSMS process.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index, Text
from sqlmodel import Field, SQLModel

from csms.store.types import UtcDateTime, utcnow

OPERATOR_NAME_MAX = 64
ROLES = ("viewer", "operator", "admin")  # each may do what the ones before it may
AUDIT_ACTION_MAX = 200
AUDIT_TARGET_MAX = 200
AUDIT_DETAIL_MAX = 300


class Operator(SQLModel, table=True):
    """A named member of the operator's staff; ``name`` is stored lower-cased and unique."""

    __tablename__ = "operators"
    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="ck_operators_role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=OPERATOR_NAME_MAX, unique=True)
    role: str = Field(max_length=16)
    password_hash: str = Field(sa_column=Column(Text, nullable=False))
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class OperatorSession(SQLModel, table=True):
    """One signed-in token of an operator, until ``expires_at`` or its sign-out."""

    __tablename__ = "operator_sessions"

    id: int | None = Field(default=None, primary_key=True)
    operator_id: int = Field(foreign_key="operators.id", ondelete="CASCADE", index=True)
    token_hash: str = Field(max_length=64, unique=True)  # sha256 hex of the bearer token
    created_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime, index=True)


class AuditRecord(SQLModel, table=True):
    """Who did what through the operator API, and how it ended (the HTTP status)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_actor_id", "actor", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UtcDateTime)
    actor: str = Field(max_length=OPERATOR_NAME_MAX)  # an operator's name, or "api_key"
    actor_kind: str = Field(max_length=16)  # "user" or "api_key"
    action: str = Field(max_length=AUDIT_ACTION_MAX)  # method and route template
    target: str = Field(max_length=AUDIT_TARGET_MAX)  # the path's ids, "name=value, ..."
    status_code: int
    detail: str = Field(max_length=AUDIT_DETAIL_MAX)
    details: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON
