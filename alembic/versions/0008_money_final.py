"""A campaign keeps the milestone plan it launched with (campaigns.milestone_plan); charges settled as failed after
too long in doubt are found at once (ix_charge_attempts_doubt_expired)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 23:00:00

The space's plan is copied onto the campaign at launch (null, as on the space, means Kindling's default). Campaigns
launched before this revision get their space's plan of now: what they would have got at funding until now.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("milestone_plan", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.execute(
        "UPDATE campaigns SET milestone_plan = spaces.milestone_plan FROM spaces "
        "WHERE spaces.id = campaigns.space_id AND campaigns.launched_at IS NOT NULL"
    )
    op.create_index(
        "ix_charge_attempts_doubt_expired",
        "charge_attempts",
        ["finished_at"],
        unique=False,
        postgresql_where=sa.text("failure_code = 'doubt_expired'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_charge_attempts_doubt_expired",
        table_name="charge_attempts",
        postgresql_where=sa.text("failure_code = 'doubt_expired'"),
    )
    op.drop_column("campaigns", "milestone_plan")
