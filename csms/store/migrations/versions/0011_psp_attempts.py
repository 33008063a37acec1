"""Attempts at payment-provider operations, recorded before the provider is called.

A top-up used to call the provider inside the database transaction that posted it; now an
attempt row is written first (``intent``), the provider is called with no transaction open,
and the outcome is written after (``succeeded``, ``failed`` or ``unknown`` until the sweeper
asks the provider). Top-ups stored before have no attempt rows: their ledger transfers and
``psp_operations`` rows stay what they were.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "psp_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.Column("transfer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_psp_attempts_amount"),
        sa.ForeignKeyConstraint(["transfer_id"], ["ledger_transfers.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index("ix_psp_attempts_state_updated", "psp_attempts", ["state", "updated_at"])
    op.create_index("ix_psp_attempts_user_id", "psp_attempts", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_psp_attempts_user_id", table_name="psp_attempts")
    op.drop_index("ix_psp_attempts_state_updated", table_name="psp_attempts")
    op.drop_table("psp_attempts")
