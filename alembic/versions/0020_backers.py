"""Backers hear from makers: notification settings, suppressed addresses, updates mailed by a fan-out job

Revision ID: 0020_backers
Revises: 0019
Create Date: 2026-12-07 06:05:00

- users.notify_updates, notify_comments, notify_messages: which mails the account wants; all true for every account.
- mail_suppressions: an address that bounced or complained gets no more mail (one row per address).
- campaign_updates.mailed_at: when the fan-out job wrote the update's mails to the outbox (null: not yet); the sweep
  re-finds an update whose job was lost. Updates posted before this revision count as mailed.
- mails.campaign_update_id: the update a mail carries, so one backer gets each update once (a unique index).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0020_backers"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for kind in ("updates", "comments", "messages"):
        op.add_column(
            "users", sa.Column(f"notify_{kind}", sa.Boolean(), server_default=sa.text("true"), nullable=False)
        )
    op.create_table(
        "mail_suppressions",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("address = lower(address)", name=op.f("ck_mail_suppressions_address_lower")),
        sa.CheckConstraint("reason IN ('bounce', 'complaint')", name=op.f("ck_mail_suppressions_reason_known")),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_mail_suppressions")),
    )
    op.add_column("campaign_updates", sa.Column("mailed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE campaign_updates SET mailed_at = created_at")
    op.create_index(
        "ix_campaign_updates_unmailed",
        "campaign_updates",
        ["created_at"],
        postgresql_where=sa.text("mailed_at IS NULL"),
    )
    op.add_column(
        "mails",
        sa.Column(
            "campaign_update_id",
            sa.Uuid(),
            sa.ForeignKey(
                "campaign_updates.id", ondelete="SET NULL", name=op.f("fk_mails_campaign_update_id_campaign_updates")
            ),
            nullable=True,
        ),
    )
    op.create_index(
        "uq_mails_one_per_update_and_user",
        "mails",
        ["campaign_update_id", "user_id"],
        unique=True,
        postgresql_where=sa.text("campaign_update_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_mails_one_per_update_and_user", table_name="mails")
    op.drop_column("mails", "campaign_update_id")
    op.drop_index("ix_campaign_updates_unmailed", table_name="campaign_updates")
    op.drop_column("campaign_updates", "mailed_at")
    op.drop_table("mail_suppressions")
    for kind in ("updates", "comments", "messages"):
        op.drop_column("users", f"notify_{kind}")
