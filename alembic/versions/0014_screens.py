"""A campaign keeps the sponsor fee it launched with; an update says when it was edited

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 03:00:00

- campaigns.sponsor_fee_bps: the space's fee at launch (null before launch), what its charges are taken with, whatever
  the space's operators set later. Campaigns launched already take their space's fee of today.
- campaign_updates.edited_at: when the maker last changed a posted update (null: never).
- pledges.card_change_setup_intent_id: the SetupIntent of a backer's card change while the campaign is live; the old
  card stays the one charged until Stripe has saved the new one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("sponsor_fee_bps", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_campaigns_sponsor_fee_range"), "campaigns", "sponsor_fee_bps BETWEEN 0 AND 2000"
    )
    op.execute(
        "UPDATE campaigns SET sponsor_fee_bps = spaces.sponsor_fee_bps FROM spaces "
        "WHERE spaces.id = campaigns.space_id AND campaigns.launched_at IS NOT NULL"
    )
    op.add_column("campaign_updates", sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("pledges", sa.Column("card_change_setup_intent_id", sa.String(length=255), nullable=True))


def downgrade() -> None:
    op.drop_column("pledges", "card_change_setup_intent_id")
    op.drop_column("campaign_updates", "edited_at")
    op.drop_constraint(op.f("ck_campaigns_sponsor_fee_range"), "campaigns", type_="check")
    op.drop_column("campaigns", "sponsor_fee_bps")
