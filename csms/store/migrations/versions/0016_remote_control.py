"""Remote control: firmware and log status history, charging profiles set by the CSMS, and
the index of files chargers uploaded (diagnostics, logs).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _charger() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "charger_status_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        _charger(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_charger_status_reports_charger_kind_id",
        "charger_status_reports",
        ["charger_id", "kind", "id"],
    )
    op.create_table(
        "charger_charging_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("stack_level", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=48), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(length=24), nullable=True),
        _charger(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_charger_charging_profiles_charger_id_id",
        "charger_charging_profiles",
        ["charger_id", "id"],
    )
    op.create_table(
        "charger_uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("size", BIG, nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        _charger(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_charger_uploads_charger_id_id", "charger_uploads", ["charger_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_charger_uploads_charger_id_id", table_name="charger_uploads")
    op.drop_table("charger_uploads")
    op.drop_index(
        "ix_charger_charging_profiles_charger_id_id", table_name="charger_charging_profiles"
    )
    op.drop_table("charger_charging_profiles")
    op.drop_index("ix_charger_status_reports_charger_kind_id", table_name="charger_status_reports")
    op.drop_table("charger_status_reports")
