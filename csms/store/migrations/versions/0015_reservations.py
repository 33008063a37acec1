"""Reservations sent to chargers (ReserveNow) and what became of them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("id_token", sa.String(length=36), nullable=False),
        sa.Column("id_token_type", sa.String(length=20), nullable=True),
        sa.Column("group_id_token", sa.String(length=36), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.String(length=32), nullable=True),
        sa.Column("transaction_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("charger_id", "reservation_id", name="uq_reservations_charger_id"),
    )


def downgrade() -> None:
    op.drop_table("reservations")
