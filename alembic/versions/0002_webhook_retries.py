"""Webhook events remember failed attempts, and the sweep finds the unapplied ones by an index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_events", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("webhook_events", sa.Column("last_error", sa.Text(), nullable=True))
    op.create_index(
        "ix_webhook_events_unprocessed",
        "webhook_events",
        ["received_at"],
        unique=False,
        postgresql_where=sa.text("processed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_webhook_events_unprocessed", table_name="webhook_events", postgresql_where=sa.text("processed_at IS NULL")
    )
    op.drop_column("webhook_events", "last_error")
    op.drop_column("webhook_events", "attempts")
