"""Makers and backers talk: conversations and their messages, the maker's messages to many backers, comments

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 06:20:00

- conversations: one per (campaign, member), with when each side last read it and whether the space was asked in.
- conversation_messages: what each side wrote; a message to many backers reaches a conversation once (unique index).
- broadcasts: the maker's message to all backers or a filter of them, sent by a job in batches (`done_through`).
- comments: public comments on a campaign or an update, one level of replies, hidden ones kept and marked.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("member_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("maker_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("space_invited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_message_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_conversations_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["users.id"], name=op.f("fk_conversations_member_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("campaign_id", "member_id", name="uq_conversations_campaign_member"),
    )
    op.create_index("ix_conversations_member_last", "conversations", ["member_id", "last_message_at"])
    op.create_index("ix_conversations_campaign_last", "conversations", ["campaign_id", "last_message_at"])
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("audience", sa.String(length=20), nullable=False),
        sa.Column("tier_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("done_through", sa.Uuid(), nullable=True),
        sa.Column("recipients", sa.Integer(), server_default="0", nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("batch_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "audience IN ('all', 'tier', 'no_address', 'charge_failed')", name=op.f("ck_broadcasts_audience_known")
        ),
        sa.CheckConstraint(
            "(audience = 'tier') = (tier_id IS NOT NULL)", name=op.f("ck_broadcasts_tier_for_tier_audience")
        ),
        sa.CheckConstraint("length(body) BETWEEN 1 AND 5000", name=op.f("ck_broadcasts_body_length")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_broadcasts_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_broadcasts_author_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tier_id"], ["tiers.id"], name=op.f("fk_broadcasts_tier_id_tiers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    op.create_index(op.f("ix_broadcasts_campaign_id"), "broadcasts", ["campaign_id"])
    op.create_index(
        "ix_broadcasts_unfinished", "broadcasts", ["batch_at"], postgresql_where=sa.text("finished_at IS NULL")
    )
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("author_role", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("broadcast_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "author_role IN ('member', 'maker', 'space')", name=op.f("ck_conversation_messages_author_role_known")
        ),
        sa.CheckConstraint("length(body) BETWEEN 1 AND 5000", name=op.f("ck_conversation_messages_body_length")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_conversation_messages_author_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_conversation_messages_broadcast_id_broadcasts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_messages")),
    )
    op.create_index(
        "ix_conversation_messages_conversation_created", "conversation_messages", ["conversation_id", "created_at"]
    )
    op.create_index(
        "uq_conversation_messages_broadcast",
        "conversation_messages",
        ["broadcast_id", "conversation_id"],
        unique=True,
        postgresql_where=sa.text("broadcast_id IS NOT NULL"),
    )
    op.create_table(
        "comments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("update_id", sa.Uuid(), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("author_role", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hidden_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("author_role IN ('member', 'maker', 'space')", name=op.f("ck_comments_author_role_known")),
        sa.CheckConstraint("length(body) BETWEEN 1 AND 5000", name=op.f("ck_comments_body_length")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_comments_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["update_id"],
            ["campaign_updates.id"],
            name=op.f("fk_comments_update_id_campaign_updates"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["comments.id"], name=op.f("fk_comments_parent_id_comments"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_comments_author_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["hidden_by"], ["users.id"], name=op.f("fk_comments_hidden_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    op.create_index("ix_comments_thread", "comments", ["campaign_id", "update_id", "created_at"])
    op.create_index("ix_comments_author_created", "comments", ["author_id", "created_at"])
    op.create_index(op.f("ix_comments_parent_id"), "comments", ["parent_id"])


def downgrade() -> None:
    op.drop_table("comments")
    op.drop_table("conversation_messages")
    op.drop_table("broadcasts")
    op.drop_table("conversations")
