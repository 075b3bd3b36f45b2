"""an index on residents.banned_at: each process reads who is banned every few seconds

Revision ID: 0006_residents_banned_index
Revises: 0005_bans_and_appeal_limit
"""

from __future__ import annotations

from alembic import op

revision = "0006_residents_banned_index"
down_revision = "0005_bans_and_appeal_limit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_residents_banned_at", "residents", ["banned_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_residents_banned_at", table_name="residents")
