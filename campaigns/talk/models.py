"""The tables of conversations, their messages, the maker's messages to many backers, and comments."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from campaigns.models import Base, new_id

AUDIENCES = ("all", "tier", "no_address", "charge_failed")
# Who wrote a message or a comment, as its readers see it marked: the maker, the sponsoring space, or a member.
AUTHOR_ROLES = ("member", "maker", "space")


class Conversation(Base):
    """One per (campaign, member): the member (a backer, or someone thinking of backing) and the campaign's maker.

    Each side's `*_read_at` is when they last read it: messages after it from the other side are unread."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("campaign_id", "member_id", name="uq_conversations_campaign_member"),
        Index("ix_conversations_member_last", "member_id", "last_message_at"),
        Index("ix_conversations_campaign_last", "campaign_id", "last_message_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    member_read_at: Mapped[datetime | None]
    maker_read_at: Mapped[datetime | None]
    # Set when the member asks the sponsoring space's operators to step in: from then on they read it too.
    space_invited_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Message(Base):
    __tablename__ = "conversation_messages"
    __table_args__ = (
        CheckConstraint("author_role IN ('member', 'maker', 'space')", name="author_role_known"),
        CheckConstraint("length(body) BETWEEN 1 AND 5000", name="body_length"),
        Index("ix_conversation_messages_conversation_created", "conversation_id", "created_at"),
        # A message to many backers reaches each conversation once, however often its batch job runs.
        Index(
            "uq_conversation_messages_broadcast",
            "broadcast_id",
            "conversation_id",
            unique=True,
            postgresql_where=text("broadcast_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    author_role: Mapped[str] = mapped_column(String(10))
    body: Mapped[str] = mapped_column(Text)
    broadcast_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("broadcasts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Broadcast(Base):
    """The maker's message to many backers, delivered by a job in batches of backers ordered by id.

    `done_through` is the last backer id a batch reached; `finished_at` is set once a batch finds no more."""

    __tablename__ = "broadcasts"
    __table_args__ = (
        CheckConstraint("audience IN ('all', 'tier', 'no_address', 'charge_failed')", name="audience_known"),
        CheckConstraint("(audience = 'tier') = (tier_id IS NOT NULL)", name="tier_for_tier_audience"),
        CheckConstraint("length(body) BETWEEN 1 AND 5000", name="body_length"),
        Index("ix_broadcasts_unfinished", "batch_at", postgresql_where=text("finished_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    audience: Mapped[str] = mapped_column(String(20))
    tier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tiers.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    done_through: Mapped[uuid.UUID | None]
    recipients: Mapped[int] = mapped_column(Integer, server_default="0")
    finished_at: Mapped[datetime | None]
    # When its last batch ran (or it was written): the sweep resumes one that has not moved for a while.
    batch_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Comment(Base):
    """A public comment on a campaign (`update_id` null) or on one of its updates; `parent_id` makes it a reply to a
    top-level comment (one level only). Hidden ones are kept, marked, and shown to nobody but as "hidden"."""

    __tablename__ = "comments"
    __table_args__ = (
        CheckConstraint("author_role IN ('member', 'maker', 'space')", name="author_role_known"),
        CheckConstraint("length(body) BETWEEN 1 AND 5000", name="body_length"),
        Index("ix_comments_thread", "campaign_id", "update_id", "created_at"),
        Index("ix_comments_author_created", "author_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    update_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campaign_updates.id", ondelete="CASCADE"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    author_role: Mapped[str] = mapped_column(String(10))
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    hidden_at: Mapped[datetime | None]
    hidden_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
