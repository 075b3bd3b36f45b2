"""residents.text_buttons (a VK client without callback buttons gets notices' buttons as text);
appeals already «Решено» are put on the scan, which closes them after VERDICT_WAIT

Revision ID: 0007_text_buttons_verdict_wait
Revises: 0006_residents_banned_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_text_buttons_verdict_wait"
down_revision = "0006_residents_banned_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE … ADD COLUMN with a server default, on both databases.
    op.add_column(
        "residents",
        sa.Column("text_buttons", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # Resolved before the verdict wait existed: the scan left them without a next check. The
    # first scan after the upgrade closes those resolved longer ago than VERDICT_WAIT.
    op.execute(
        "UPDATE appeals SET next_check_at = resolved_at "
        "WHERE status = 'resolved' AND next_check_at IS NULL AND resolved_at IS NOT NULL"
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite ≥ 3.35): a batch would copy a table other tables reference.
    op.drop_column("residents", "text_buttons")
