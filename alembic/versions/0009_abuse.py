"""Throttles that grow their delay and say when they may be forgotten

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 23:55:00

`blocked_until`: no attempt of the bucket is let through before it (log-in: a delay that doubles with each attempt
past the free ones). `expires_at`: after it the row counts nothing and the sweep deletes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("throttles", sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "throttles",
        sa.Column("expires_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index(op.f("ix_throttles_expires_at"), "throttles", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_throttles_expires_at"), table_name="throttles")
    op.drop_column("throttles", "expires_at")
    op.drop_column("throttles", "blocked_until")
