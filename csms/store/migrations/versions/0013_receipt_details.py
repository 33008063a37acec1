"""Receipts name the seller, the charger's location, the tariff and the tax, and have numbers.

``receipts`` gains a unique ``number`` and the details copied at issue time; the new table
``receipt_counters`` keeps the last number of each series (receipt prefix). Receipts issued
before get numbers in the order they were issued (by id) in the series ``QRC-`` (the default
prefix), whose counter continues from them, and the tariff, EVSE and location of their
order; their operator and tax columns stay empty (nobody recorded them then).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_SERIES = "QRC-"


def _details() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("operator_name", sa.String(length=120), nullable=True),
        sa.Column("operator_address", sa.String(length=200), nullable=True),
        sa.Column("operator_tax_id", sa.String(length=40), nullable=True),
        sa.Column("tariff", sa.Text(), nullable=True),
        sa.Column("tax_rate", sa.String(length=12), nullable=True),
        sa.Column("tax_amount", sa.Integer(), nullable=True),
    )


def upgrade() -> None:
    op.create_table(
        "receipt_counters",
        sa.Column("series", sa.String(length=16), nullable=False),
        sa.Column("last_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("series"),
    )
    with op.batch_alter_table("receipts") as batch:
        batch.add_column(sa.Column("number", sa.String(length=24), nullable=True))
        for column in _details():
            batch.add_column(column)
    last = _number_old_receipts(op.get_bind())
    if last:
        op.bulk_insert(
            sa.table("receipt_counters", sa.column("series"), sa.column("last_seq")),
            [{"series": LEGACY_SERIES, "last_seq": last}],
        )
    with op.batch_alter_table("receipts") as batch:
        batch.alter_column("number", existing_type=sa.String(length=24), nullable=False)
        batch.create_unique_constraint("uq_receipts_number", ["number"])


def _number_old_receipts(connection: sa.Connection) -> int:
    """Numbers the receipts already issued, in id order, and copies their order's details;
    returns how many there were."""
    receipts = sa.table(
        "receipts",
        sa.column("id"),
        sa.column("order_id"),
        sa.column("charger_id"),
        sa.column("number"),
        sa.column("evse_id"),
        sa.column("location"),
        sa.column("tariff"),
    )
    orders = sa.table("orders", sa.column("id"), sa.column("evse_id"), sa.column("tariff_claim"))
    chargers = sa.table("chargers", sa.column("id"), sa.column("location"))
    rows = connection.execute(
        sa.select(receipts.c.id, orders.c.evse_id, orders.c.tariff_claim, chargers.c.location)
        .select_from(receipts)
        .outerjoin(orders, orders.c.id == receipts.c.order_id)
        .outerjoin(chargers, chargers.c.id == receipts.c.charger_id)
        .order_by(receipts.c.id)
    ).all()
    for seq, (receipt_id, evse_id, tariff, location) in enumerate(rows, start=1):
        connection.execute(
            receipts.update()
            .where(receipts.c.id == receipt_id)
            .values(
                number=f"{LEGACY_SERIES}{seq:06d}",
                evse_id=evse_id,
                tariff=tariff,
                location=location,
            )
        )
    return len(rows)


def downgrade() -> None:
    with op.batch_alter_table("receipts") as batch:
        batch.drop_constraint("uq_receipts_number", type_="unique")
        batch.drop_column("number")
        for column in reversed(_details()):
            batch.drop_column(column.name)
    op.drop_table("receipt_counters")
