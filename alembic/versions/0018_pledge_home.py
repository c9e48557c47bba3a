"""A pledge is a list of line items

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 03:00:00

- pledge_items: one row per line of a pledge (kind tier / addon / bonus / shipping, what it refers to, the variant
  chosen, quantity × unit_amount, the SKU when the line is one); a pledge's amount is the sum of its lines.
- Every pledge made before gets its lines as it was priced: its tier at the price paid for it (the amount less the
  bonus and the shipping fee, which is the tier's price for every pledge made through Kindling: tiers are priced
  only while draft), then its bonus and its shipping fee when they are more than zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One statement per string: asyncpg prepares each. The tier's line first, then the bonus, then the shipping fee.
BACKFILL = (
    """
INSERT INTO pledge_items (id, pledge_id, position, kind, ref_id, quantity, unit_amount)
SELECT gen_random_uuid(), id, 0, 'tier', tier_id, 1, amount - bonus - shipping_fee
FROM pledges WHERE tier_id IS NOT NULL
""",
    """
INSERT INTO pledge_items (id, pledge_id, position, kind, quantity, unit_amount)
SELECT gen_random_uuid(), id, CASE WHEN tier_id IS NULL THEN 0 ELSE 1 END, 'bonus', 1, bonus
FROM pledges WHERE bonus > 0
""",
    """
INSERT INTO pledge_items (id, pledge_id, position, kind, quantity, unit_amount)
SELECT gen_random_uuid(), id, (tier_id IS NOT NULL)::int + (bonus > 0)::int, 'shipping', 1, shipping_fee
FROM pledges WHERE shipping_fee > 0
""",
)


def upgrade() -> None:
    op.create_table(
        "pledge_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pledge_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("ref_id", sa.Uuid(), nullable=True),
        sa.Column("variant", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.CheckConstraint("kind IN ('tier', 'addon', 'bonus', 'shipping')", name=op.f("ck_pledge_items_kind_known")),
        sa.CheckConstraint(
            "(kind IN ('tier', 'addon')) = (ref_id IS NOT NULL)", name=op.f("ck_pledge_items_ref_for_goods")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_pledge_items_quantity_positive")),
        sa.CheckConstraint("unit_amount >= 0", name=op.f("ck_pledge_items_unit_amount_nonnegative")),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledges.id"], name=op.f("fk_pledge_items_pledge_id_pledges")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pledge_items")),
        sa.UniqueConstraint("pledge_id", "position", name="uq_pledge_items_pledge_position"),
    )
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("pledge_items")
