"""Messages chargers send unasked (security events, NotifyEvent, certificate requests, ...).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "charger_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("status", sa.String(length=50), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("answer", sa.String(length=20), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_charger_notifications_charger_id_id",
        "charger_notifications",
        ["charger_id", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_charger_notifications_charger_id_id", table_name="charger_notifications")
    op.drop_table("charger_notifications")
