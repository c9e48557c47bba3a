"""Accounts: verified addresses, server-side sessions, mailed single-use links, tokens that expire and may be named

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 23:30:00

Users who signed up before this migration keep working as they did, so they are taken as verified. Sessions held
in cookies until now carried the user's id; they end here (the cookie now carries only a random session id).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOKEN_EXPIRY_DEFAULT = sa.text("now() + interval '90 days'")


def upgrade() -> None:
    op.add_column("users", sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE users SET email_verified_at = created_at")
    op.add_column("users", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))

    op.add_column("api_tokens", sa.Column("name", sa.String(100), nullable=True))
    op.add_column(
        "api_tokens",
        sa.Column("expires_at", sa.DateTime(timezone=True), server_default=TOKEN_EXPIRY_DEFAULT, nullable=False),
    )
    op.execute("UPDATE api_tokens SET expires_at = created_at + interval '90 days'")
    op.add_column("api_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_tokens", sa.Column("last_used_from", sa.String(64), nullable=True))
    op.add_column("api_tokens", sa.Column("user_agent", sa.String(300), nullable=True))

    op.create_table(
        "user_sessions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_used_from", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(300), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_sessions_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_user_sessions"),
        sa.UniqueConstraint("key_hash", name="uq_user_sessions_key_hash"),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])

    op.create_table(
        "account_links",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("new_email", sa.String(320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('reset_password', 'verify_email', 'change_email')", name="ck_account_links_purpose_known"
        ),
        sa.CheckConstraint(
            "(purpose = 'change_email') = (new_email IS NOT NULL)", name="ck_account_links_new_email_for_change"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_account_links_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_account_links"),
        sa.UniqueConstraint("token_hash", name="uq_account_links_token_hash"),
    )
    op.create_index("ix_account_links_user_id", "account_links", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_account_links_user_id", table_name="account_links")
    op.drop_table("account_links")
    op.drop_index("ix_user_sessions_user_id", table_name="user_sessions")
    op.drop_table("user_sessions")
    for column in ("user_agent", "last_used_from", "last_used_at", "expires_at", "name"):
        op.drop_column("api_tokens", column)
    op.drop_column("users", "deleted_at")
    op.drop_column("users", "email_verified_at")
