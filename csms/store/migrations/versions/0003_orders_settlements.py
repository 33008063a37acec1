"""Orders, settlements, payments, receipts, order flags and settlement rejections.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 00:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request_kind", sa.String(length=16), nullable=False),
        sa.Column("request_value", sa.Integer(), nullable=True),
        sa.Column("tariff_claim", sa.Text(), nullable=False),
        sa.Column("limits_claim", sa.Text(), nullable=False),
        sa.Column("hold_amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("start_token", sa.Text(), nullable=False),
        sa.Column("kid", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remote_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hold_released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_orders_charger_id"), "orders", ["charger_id"], unique=False)
    op.create_index(op.f("ix_orders_expires_at"), "orders", ["expires_at"], unique=False)
    op.create_index(op.f("ix_orders_status"), "orders", ["status"], unique=False)
    op.create_index("ix_orders_user_created", "orders", ["user_id", "created_at"], unique=False)
    op.create_table(
        "settlement_rejections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=True),
        sa.Column("order_id", sa.String(length=20), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_settlement_rejections_order_id"),
        "settlement_rejections",
        ["order_id"],
        unique=False,
    )
    op.create_table(
        "order_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "kind"),
    )
    op.create_table(
        "settlements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=20), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("session_no", sa.Integer(), nullable=False),
        sa.Column("first_source", sa.String(length=16), nullable=False),
        sa.Column("txn", sa.String(length=40), nullable=True),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("energy_wh", sa.Integer(), nullable=True),
        sa.Column("signed_amount", sa.Integer(), nullable=True),
        sa.Column("usage_claim", sa.Text(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("stop_reason", sa.String(length=64), nullable=True),
        sa.Column("ocpp_transaction_pk", sa.Integer(), nullable=True),
        sa.Column("ocpp_energy_wh", sa.Integer(), nullable=True),
        sa.Column("ocpp_amount", sa.Integer(), nullable=True),
        sa.Column("charge_amount", sa.Integer(), nullable=False),
        sa.Column("disagreement", sa.Boolean(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("charger_id", "txn"),
        sa.UniqueConstraint("ocpp_transaction_pk"),
        sa.UniqueConstraint("order_id", "session_no"),
    )
    op.create_index(op.f("ix_settlements_order_id"), "settlements", ["order_id"], unique=False)
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("settlement_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("refunded_amount", sa.Integer(), nullable=False),
        sa.Column("capture_kind", sa.String(length=8), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    op.create_index(op.f("ix_payments_status"), "payments", ["status"], unique=False)
    op.create_index(op.f("ix_payments_user_id"), "payments", ["user_id"], unique=False)
    op.create_table(
        "receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("energy_wh", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("breakdown", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("payment_id"),
    )
    op.create_index(op.f("ix_receipts_order_id"), "receipts", ["order_id"], unique=False)
    op.create_index(op.f("ix_receipts_user_id"), "receipts", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_receipts_user_id"), table_name="receipts")
    op.drop_index(op.f("ix_receipts_order_id"), table_name="receipts")
    op.drop_table("receipts")
    op.drop_index(op.f("ix_payments_user_id"), table_name="payments")
    op.drop_index(op.f("ix_payments_status"), table_name="payments")
    op.drop_table("payments")
    op.drop_index(op.f("ix_settlements_order_id"), table_name="settlements")
    op.drop_table("settlements")
    op.drop_table("order_flags")
    op.drop_index(op.f("ix_settlement_rejections_order_id"), table_name="settlement_rejections")
    op.drop_table("settlement_rejections")
    op.drop_index("ix_orders_user_created", table_name="orders")
    op.drop_index(op.f("ix_orders_status"), table_name="orders")
    op.drop_index(op.f("ix_orders_expires_at"), table_name="orders")
    op.drop_index(op.f("ix_orders_charger_id"), table_name="orders")
    op.drop_table("orders")
