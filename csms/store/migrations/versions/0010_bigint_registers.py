"""Meter registers and settlement counters as 64-bit integers on PostgreSQL.

A fast charger's lifetime register passes 2,147,483,647 Wh (2.1 GWh) within a few years, and
a settlement's ``seq`` and energy are signed up to 2**53. SQLite's INTEGER is 64-bit already:
nothing changes there (and rebuilding these tables in batch mode would cascade their deletes).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("transactions", "meter_start_wh"),
    ("transactions", "meter_stop_wh"),
    ("settlements", "energy_wh"),
    ("settlements", "seq"),
    ("settlements", "ocpp_energy_wh"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_nullable=True)


def downgrade() -> None:
    """Back to 32 bits: fails (and changes nothing) while a value is beyond them."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_nullable=True)
