"""Device model of 2.0.1 chargers (NotifyReport): one row per reported variable attribute.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 02:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_variables",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("component", sa.String(length=50), nullable=False),
        sa.Column("component_instance", sa.String(length=50), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("variable", sa.String(length=50), nullable=False),
        sa.Column("variable_instance", sa.String(length=50), nullable=False),
        sa.Column("attribute_type", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("mutability", sa.String(length=10), nullable=False),
        sa.Column("persistent", sa.Boolean(), nullable=False),
        sa.Column("constant", sa.Boolean(), nullable=False),
        sa.Column("data_type", sa.String(length=16), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("min_limit", sa.Float(), nullable=True),
        sa.Column("max_limit", sa.Float(), nullable=True),
        sa.Column("values_list", sa.Text(), nullable=True),
        sa.Column("supports_monitoring", sa.Boolean(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "charger_id",
            "component",
            "component_instance",
            "evse_id",
            "connector_id",
            "variable",
            "variable_instance",
            "attribute_type",
            name="uq_device_variables_key",
        ),
    )


def downgrade() -> None:
    op.drop_table("device_variables")
