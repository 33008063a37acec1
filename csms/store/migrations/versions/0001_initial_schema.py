"""Initial schema: chargers, EVSEs, keys, id tags, transactions, meter values, logs, inbox.

Revision ID: 0001
Revises: (none, the first table)
Create Date: 2026-11-26 23:45:17.936277
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "charger_sync",
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("charger_id"),
    )
    op.create_table(
        "chargers",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("password_hash", sa.String(), nullable=True),
        sa.Column("registration", sa.String(length=16), nullable=False),
        sa.Column("ocpp_version", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("vendor", sa.String(length=50), nullable=True),
        sa.Column("model", sa.String(length=50), nullable=True),
        sa.Column("serial_number", sa.String(length=50), nullable=True),
        sa.Column("firmware_version", sa.String(length=50), nullable=True),
        sa.Column("firmware_status", sa.String(length=40), nullable=True),
        sa.Column("diagnostics_status", sa.String(length=40), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_boot_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "id_tags",
        sa.Column("id_tag", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expiry", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_tag"),
    )
    op.create_table(
        "message_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("frame", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.create_index("ix_message_log_charger_id_id", ["charger_id", "id"], unique=False)

    op.create_table(
        "settlement_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    with op.batch_alter_table("settlement_inbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_inbox_charger_id"), ["charger_id"], unique=False
        )

    op.create_table(
        "charger_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("kid", sa.String(length=16), nullable=False),
        sa.Column("jwk", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("charger_id", "kid"),
    )
    op.create_table(
        "evses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=50), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("charger_id", "evse_id", "connector_id"),
    )
    op.create_table(
        "transaction_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("transaction_id", sa.String(length=40), nullable=False),
        sa.Column("seq_no", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("trigger_reason", sa.String(length=40), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("charger_id", "transaction_id", "seq_no"),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("transaction_id", sa.String(length=40), nullable=False),
        sa.Column("ocpp_version", sa.String(length=8), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("id_tag", sa.String(length=36), nullable=True),
        sa.Column("id_tag_status", sa.String(length=16), nullable=True),
        sa.Column("start_key", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("meter_start_wh", sa.Integer(), nullable=True),
        sa.Column("meter_stop_wh", sa.Integer(), nullable=True),
        sa.Column("stop_reason", sa.String(length=40), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("flags", sa.String(length=200), nullable=False),
        sa.Column("last_seq_no", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("charger_id", "start_key"),
        sa.UniqueConstraint("charger_id", "transaction_id"),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_transactions_charger_started", ["charger_id", "started_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_transactions_id_tag"), ["id_tag"], unique=False)

    op.create_table(
        "meter_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=48), nullable=False),
        sa.Column("transaction_pk", sa.Integer(), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("measurand", sa.String(length=60), nullable=False),
        sa.Column("phase", sa.String(length=10), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("context", sa.String(length=30), nullable=True),
        sa.Column("location", sa.String(length=10), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["transaction_pk"], ["transactions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("meter_values", schema=None) as batch_op:
        batch_op.create_index(
            "ix_meter_values_txn_time", ["transaction_pk", "timestamp"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("meter_values", schema=None) as batch_op:
        batch_op.drop_index("ix_meter_values_txn_time")

    op.drop_table("meter_values")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_id_tag"))
        batch_op.drop_index("ix_transactions_charger_started")

    op.drop_table("transactions")
    op.drop_table("transaction_events")
    op.drop_table("evses")
    op.drop_table("charger_keys")
    with op.batch_alter_table("settlement_inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_inbox_charger_id"))

    op.drop_table("settlement_inbox")
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.drop_index("ix_message_log_charger_id_id")

    op.drop_table("message_log")
    op.drop_table("id_tags")
    op.drop_table("chargers")
    op.drop_table("charger_sync")
