"""Shipping by weight: the maker's choice, per campaign, between per-item fees and a weight table

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 09:00:00

- campaigns.shipping_mode: "per_item" (each tier's fee to the country plus each shipped add-on's, as before) or
  "weight" (the bracket of the contents' total weight in `shipping_table`).
- campaigns.shipping_table: [{"country": "DE" or "*", "brackets": [{"up_to_grams": 500, "fee": 900}, ...]}], the
  brackets in rising order of weight (campaigns/pledges/shipping.py checks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "campaigns", sa.Column("shipping_mode", sa.String(length=10), server_default="per_item", nullable=False)
    )
    op.add_column(
        "campaigns",
        sa.Column("shipping_table", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_campaigns_shipping_mode_known"), "campaigns", "shipping_mode IN ('per_item', 'weight')"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_campaigns_shipping_mode_known"), "campaigns", type_="check")
    op.drop_column("campaigns", "shipping_table")
    op.drop_column("campaigns", "shipping_mode")
