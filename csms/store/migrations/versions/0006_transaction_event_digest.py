"""2.0.1 transaction events keep a digest: a different event under a used seqNo is stored.

``transaction_events`` was unique per (charger, transaction, seqNo), so an event that reused a
seqNo (an ``Ended`` under the ``Started``'s number, as some chargers send) was taken for a
retransmission and lost. Now a retransmission is the same event (same ``digest``) and the
unique constraint includes it. Rows stored before keep ``digest`` "" (compared on the columns
they have).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "transaction_events"
OLD_COLUMNS = ["charger_id", "transaction_id", "seq_no"]
NEW_NAME = "uq_transaction_events_event"
# SQLite reflects the unnamed constraint of 0001 without a name: batch mode names it so
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
SQLITE_OLD_NAME = "uq_transaction_events_charger_id"


def _old_constraint_name() -> str:
    """The name the database gave 0001's unnamed unique constraint (PostgreSQL: its own)."""
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints(TABLE):
        if constraint["column_names"] == OLD_COLUMNS and constraint["name"]:
            return str(constraint["name"])
    return SQLITE_OLD_NAME


def upgrade() -> None:
    old_name = _old_constraint_name()
    with op.batch_alter_table(TABLE, naming_convention=NAMING) as batch:
        batch.add_column(
            sa.Column("digest", sa.String(length=64), nullable=False, server_default="")
        )
        batch.drop_constraint(old_name, type_="unique")
        batch.create_unique_constraint(NEW_NAME, [*OLD_COLUMNS, "digest"])


def downgrade() -> None:
    # only the first event under each seqNo can stay under the old constraint
    op.execute(
        f"DELETE FROM {TABLE} WHERE id NOT IN "
        f"(SELECT MIN(id) FROM {TABLE} GROUP BY charger_id, transaction_id, seq_no)"
    )
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_constraint(NEW_NAME, type_="unique")
        batch.drop_column("digest")
        batch.create_unique_constraint(f"{TABLE}_charger_id_transaction_id_seq_no_key", OLD_COLUMNS)
