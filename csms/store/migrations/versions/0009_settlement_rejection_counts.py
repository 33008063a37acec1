"""Settlement refusals are kept once per distinct refusal, with a count and the token's head.

Every refused copy used to add a row (and an uploaded one its whole token to
``settlement_inbox``), so a client repeating or varying refused uploads grew the database
without bound. Now a refusal is unique per (token sha256, source, reason, uploading driver):
a repeat adds one to ``count`` and moves ``last_at``. The row keeps the token's first
characters (``token_head``) and length, the key id it names and the driver who uploaded it
(0 for none). Rows stored before are merged by the same key (their count and last time
kept), their head taken from the inbox when the token is there; drivers were not recorded
then (0).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "settlement_rejections"
KEY = ["token_sha256", "source", "reason", "user_id"]
HEAD_CHARS = 4096  # jws.MAX_TOKEN_LENGTH: a longer token never verifies
_SAME = " AND ".join(f"o.{c} = {TABLE}.{c}" for c in KEY)
_INBOX = f"FROM settlement_inbox AS i WHERE i.token_sha256 = {TABLE}.token_sha256"


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("kid", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("token_head", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("token_chars", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("count", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("last_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(f"UPDATE {TABLE} SET token_sha256 = '' WHERE token_sha256 IS NULL")
    op.execute(
        f"UPDATE {TABLE} SET "
        f"token_head = COALESCE((SELECT SUBSTR(i.token, 1, {HEAD_CHARS}) {_INBOX}), ''), "
        f"token_chars = COALESCE((SELECT LENGTH(i.token) {_INBOX}), 0), "
        f"count = (SELECT COUNT(*) FROM {TABLE} AS o WHERE {_SAME}), "
        f"last_at = (SELECT MAX(o.created_at) FROM {TABLE} AS o WHERE {_SAME})"
    )
    keep = f"SELECT MIN(id) FROM {TABLE} GROUP BY {', '.join(KEY)}"
    op.execute(f"DELETE FROM {TABLE} WHERE id NOT IN ({keep})")
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column("token_sha256", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("last_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index("uq_settlement_rejections_copy", TABLE, KEY, unique=True)
    op.create_index("ix_settlement_rejections_last_at", TABLE, ["last_at"])


def downgrade() -> None:
    op.drop_index("ix_settlement_rejections_last_at", table_name=TABLE)
    op.drop_index("uq_settlement_rejections_copy", table_name=TABLE)
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column("token_sha256", existing_type=sa.String(length=64), nullable=True)
        for column in ("last_at", "count", "token_chars", "token_head", "user_id", "kid"):
            batch.drop_column(column)
