"""residents.text_buttons: a VK client without callback buttons gets notices' buttons as text

Revision ID: 0007_residents_text_buttons
Revises: 0006_residents_banned_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_residents_text_buttons"
down_revision = "0006_residents_banned_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE … ADD COLUMN with a server default, on both databases.
    op.add_column(
        "residents",
        sa.Column("text_buttons", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite ≥ 3.35): a batch would copy a table other tables reference.
    op.drop_column("residents", "text_buttons")
