"""deadlines: solution deadlines, scheduler bookkeeping, escalation steps

Revision ID: 0003_deadlines
Revises: 0002_vk
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0003_deadlines"
down_revision = "0002_vk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("solution_deadline_seconds", sa.Integer(), nullable=True))

    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("solution_deadline_at", storage.models.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("next_check_at", storage.models.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("first_deadline_at", storage.models.UTCDateTime(), nullable=True)
        )
        batch_op.create_index(
            "ix_appeals_status_solution_deadline", ["status", "solution_deadline_at"], unique=False
        )
        batch_op.create_index("ix_appeals_next_check", ["next_check_at"], unique=False)

    # Appeals still open when this arrives are looked at by the first scan: an overdue one
    # escalates from then on (their solution deadline stays unset: none was promised).
    op.execute(
        "UPDATE appeals SET next_check_at = created_at "
        "WHERE status IN ('new', 'in_work', 'reopened')"
    )
    op.execute("UPDATE appeals SET first_deadline_at = deadline_at")

    op.create_table(
        "appeal_escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("deadline_at", storage.models.UTCDateTime(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("at", storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appeal_id"], ["appeals.id"], name=op.f("fk_appeal_escalations_appeal_id_appeals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeal_escalations")),
        sa.UniqueConstraint(
            "appeal_id",
            "kind",
            "deadline_at",
            "level",
            name=op.f("uq_appeal_escalations_appeal_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("appeal_escalations")
    op.drop_index("ix_appeals_next_check", table_name="appeals")
    op.drop_index("ix_appeals_status_solution_deadline", table_name="appeals")
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch would copy the table, which
    # other tables reference and the bot's connections enforce foreign keys on.
    op.drop_column("appeals", "first_deadline_at")
    op.drop_column("appeals", "next_check_at")
    op.drop_column("appeals", "solution_deadline_at")
    op.drop_column("categories", "solution_deadline_seconds")
