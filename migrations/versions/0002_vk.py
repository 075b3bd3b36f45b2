"""VK front: processed events, long poll state, longer photo references

Revision ID: 0002_vk
Revises: 0001
Create Date: 2026-11-23 15:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0002_vk"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processed_events",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("at", storage.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_processed_events")),
    )
    op.create_index("ix_processed_events_at", "processed_events", ["at"], unique=False)
    op.create_table(
        "poll_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_poll_state")),
    )
    with op.batch_alter_table("appeal_photos") as batch:
        batch.alter_column(
            "file_ref",
            existing_type=sa.String(length=300),
            type_=sa.String(length=2000),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("appeal_photos") as batch:
        batch.alter_column(
            "file_ref",
            existing_type=sa.String(length=2000),
            type_=sa.String(length=300),
            existing_nullable=False,
        )
    op.drop_table("poll_state")
    op.drop_index("ix_processed_events_at", table_name="processed_events")
    op.drop_table("processed_events")
