"""At most one unretired (pinned) settlement key per charger, enforced by the database.

Two key changes racing (an operator's replacement and a charger's signed one) could each
retire the old key and add their own, leaving two pinned keys. A partial unique index on
``charger_keys(charger_id) WHERE retired_at IS NULL`` makes the second commit fail, and the
key change runs again on what the first one left. A database that already holds two
unretired keys for a charger keeps the newest pinned and retires the others first.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNRETIRED = sa.text("retired_at IS NULL")


def upgrade() -> None:
    keys = sa.table(
        "charger_keys",
        sa.column("id", sa.Integer),
        sa.column("charger_id", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("retired_at", sa.DateTime(timezone=True)),
    )
    newer = keys.alias("newer")
    has_newer = (
        sa.select(newer.c.id)
        .where(
            newer.c.charger_id == keys.c.charger_id,
            newer.c.retired_at.is_(None),
            sa.or_(
                newer.c.created_at > keys.c.created_at,
                sa.and_(newer.c.created_at == keys.c.created_at, newer.c.id > keys.c.id),
            ),
        )
        .exists()
    )
    op.execute(
        keys.update()
        .where(keys.c.retired_at.is_(None), has_newer)
        .values(retired_at=sa.func.current_timestamp())
    )
    op.create_index(
        "ux_charger_keys_one_pinned",
        "charger_keys",
        ["charger_id"],
        unique=True,
        sqlite_where=UNRETIRED,
        postgresql_where=UNRETIRED,
    )


def downgrade() -> None:
    op.drop_index("ux_charger_keys_one_pinned", table_name="charger_keys")
