"""card_messages.platform: a VK resident's notice and a Telegram chat's message no longer share
a key (the same numbers on both platforms overwrote each other's row)

Revision ID: 0008_card_messages_platform
Revises: 0007_text_buttons_verdict_wait
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_card_messages_platform"
down_revision = "0007_text_buttons_verdict_wait"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "card_messages",
        sa.Column("platform", sa.String(length=16), nullable=False, server_default="telegram"),
    )
    # Every row so far is a staff chat's (Telegram) but the notices, which went to the
    # appeal's author, on the appeal's platform.
    op.execute(
        "UPDATE card_messages SET platform = 'vk' WHERE purpose = 'notice' "
        "AND appeal_id IN (SELECT id FROM appeals WHERE platform = 'vk')"
    )
    # SQLite changes a constraint by copying the table; nothing references card_messages.
    with op.batch_alter_table("card_messages") as batch:
        batch.drop_constraint("uq_card_messages_chat_id", type_="unique")
        batch.create_unique_constraint(
            "uq_card_messages_platform", ["platform", "chat_id", "message_id"]
        )


def downgrade() -> None:
    # Where both platforms hold the same (chat, message), the VK notice goes: the old key
    # cannot hold both.
    op.execute(
        "DELETE FROM card_messages WHERE platform = 'vk' AND EXISTS ("
        "SELECT 1 FROM card_messages AS other WHERE other.platform = 'telegram' "
        "AND other.chat_id = card_messages.chat_id "
        "AND other.message_id = card_messages.message_id)"
    )
    with op.batch_alter_table("card_messages") as batch:
        batch.drop_constraint("uq_card_messages_platform", type_="unique")
        batch.create_unique_constraint("uq_card_messages_chat_id", ["chat_id", "message_id"])
        batch.drop_column("platform")
