"""Chargers' OCPP security profile: 3 connects with a client certificate instead of a password.

Existing chargers become profile 1 (HTTP Basic, with or without TLS): what they were allowed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chargers") as batch:
        batch.add_column(
            sa.Column("security_profile", sa.Integer(), nullable=False, server_default="1")
        )


def downgrade() -> None:
    # a plain DROP COLUMN (SQLite 3.35+ has it): batch mode would copy the table, and its
    # DROP TABLE chargers would cascade to every row that references a charger
    op.drop_column("chargers", "security_profile")
