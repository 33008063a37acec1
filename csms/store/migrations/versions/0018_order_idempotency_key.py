"""The driver's ``Idempotency-Key`` of an order, unique per driver.

``POST /api/v1/orders`` with the header stores the key on the order; a unique index on
``orders(user_id, idempotency_key)`` makes a second order with the same key fail, so two
racing requests make one order (the loser runs again and finds the winner's). Orders without
a key keep NULL, which never collides.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 12:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ux_orders_user_idempotency_key"


def upgrade() -> None:
    # an added column and an index: SQLite's batch mode alters the table in place (no copy)
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=100), nullable=True))
        batch.create_index(INDEX, ["user_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="orders")
    # not in batch mode: on SQLite that would copy ``orders``, which other tables reference
    # (SQLite >= 3.35 drops a column in place)
    op.drop_column("orders", "idempotency_key")
