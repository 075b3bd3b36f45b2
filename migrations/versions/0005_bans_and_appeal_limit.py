"""bans and the hourly limit: residents.banned_at/ban_reason/ban_notified, an index on
appeals (resident_id, created_at)

Revision ID: 0005_bans_and_appeal_limit
Revises: 0004_report_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0005_bans_and_appeal_limit"
down_revision = "0004_report_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE … ADD COLUMN (nullable, or with a server default) on both databases.
    op.add_column("residents", sa.Column("banned_at", storage.models.UTCDateTime(), nullable=True))
    op.add_column("residents", sa.Column("ban_reason", sa.String(length=300), nullable=True))
    op.add_column(
        "residents",
        sa.Column("ban_notified", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_appeals_resident_created", "appeals", ["resident_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_appeals_resident_created", table_name="appeals")
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch would copy the table, which
    # other tables reference and the bot's connections enforce foreign keys on.
    op.drop_column("residents", "ban_notified")
    op.drop_column("residents", "ban_reason")
    op.drop_column("residents", "banned_at")
