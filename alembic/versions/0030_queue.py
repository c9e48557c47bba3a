"""A campaign whose pledges' contents changed since its plan was made waits in plan_requests until it is planned again

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 09:15:00

- plan_requests: one row per campaign whose plan is stale for a reason the plan itself cannot show (a pledge's
  add-ons or variants changed after funding); the sweep asks again for the plan of every campaign listed, and
  planning removes the row. Existing rows: none.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_requests",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_plan_requests_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_plan_requests")),
    )


def downgrade() -> None:
    op.drop_table("plan_requests")
