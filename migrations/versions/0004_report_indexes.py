"""indexes for reports: /stats and /map read a period from an index alone

Revision ID: 0004_report_indexes
Revises: 0003_deadlines
"""

from __future__ import annotations

from alembic import op

revision = "0004_report_indexes"
down_revision = "0003_deadlines"
branch_labels = None
depends_on = None

REPORT_COLUMNS = [
    "created_at",
    "category_id",
    "status",
    "department_id",
    "platform",
    "reopened_count",
    "deadline_at",
    "first_answer_at",
    "resolved_at",
    "closed_at",
    "first_deadline_at",
]
PIN_COLUMNS = ["created_at", "latitude", "longitude", "category_id"]


def upgrade() -> None:
    op.create_index("ix_appeals_report", "appeals", REPORT_COLUMNS, unique=False)
    op.create_index("ix_appeals_pins", "appeals", PIN_COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_appeals_pins", table_name="appeals")
    op.drop_index("ix_appeals_report", table_name="appeals")
