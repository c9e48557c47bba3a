"""The maker's catalogue grows: product options and their variant SKUs, and add-ons

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 02:50:00

- products.options: the options a backer chooses among ([{"name", "values"}]).
- product_variants: one row per combination of option values, with its own SKU (unique in the campaign) and an
  optional limit kept as `remaining` under CHECK (remaining >= 0), as tiers keep their slots.
- add_ons and add_on_tiers: a product (or one variant) offered alone at a price, optionally limited the same way,
  optionally only with some tiers, with its own shipping fees per country.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIMIT_CHECKS = (
    ("quantity_limit_positive", "quantity_limit IS NULL OR quantity_limit > 0"),
    ("remaining_nonnegative", "remaining >= 0"),
    ("remaining_iff_limited", "(quantity_limit IS NULL) = (remaining IS NULL)"),
    ("remaining_within_limit", "remaining <= quantity_limit"),
)


def _limit_checks(table: str) -> list[sa.CheckConstraint]:
    return [sa.CheckConstraint(sql, name=op.f(f"ck_{table}_{name}")) for name, sql in LIMIT_CHECKS]


def upgrade() -> None:
    op.add_column(
        "products",
        sa.Column("options", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
    )
    op.create_table(
        "product_variants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("choice", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity_limit", sa.Integer(), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_limit_checks("product_variants"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_product_variants_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_product_variants_product_id_products"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_variants")),
        sa.UniqueConstraint("campaign_id", "sku", name="uq_product_variants_campaign_sku"),
        sa.UniqueConstraint("product_id", "choice", name="uq_product_variants_product_choice"),
    )
    op.create_index(op.f("ix_product_variants_campaign_id"), "product_variants", ["campaign_id"], unique=False)
    op.create_index(op.f("ix_product_variants_product_id"), "product_variants", ["product_id"], unique=False)
    op.create_table(
        "add_ons",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("variant_id", sa.Uuid(), nullable=True),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("quantity_limit", sa.Integer(), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=True),
        sa.Column("ships_alone", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("shipping", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("price > 0", name=op.f("ck_add_ons_price_positive")),
        *_limit_checks("add_ons"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_add_ons_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_add_ons_product_id_products"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["product_variants.id"],
            name=op.f("fk_add_ons_variant_id_product_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_add_ons")),
    )
    op.create_index(op.f("ix_add_ons_campaign_id"), "add_ons", ["campaign_id"], unique=False)
    op.create_index(op.f("ix_add_ons_product_id"), "add_ons", ["product_id"], unique=False)
    op.create_table(
        "add_on_tiers",
        sa.Column("add_on_id", sa.Uuid(), nullable=False),
        sa.Column("tier_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["add_on_id"], ["add_ons.id"], name=op.f("fk_add_on_tiers_add_on_id_add_ons"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tier_id"], ["tiers.id"], name=op.f("fk_add_on_tiers_tier_id_tiers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("add_on_id", "tier_id", name=op.f("pk_add_on_tiers")),
    )
    op.create_index(op.f("ix_add_on_tiers_tier_id"), "add_on_tiers", ["tier_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_add_on_tiers_tier_id"), table_name="add_on_tiers")
    op.drop_table("add_on_tiers")
    op.drop_index(op.f("ix_add_ons_product_id"), table_name="add_ons")
    op.drop_index(op.f("ix_add_ons_campaign_id"), table_name="add_ons")
    op.drop_table("add_ons")
    op.drop_index(op.f("ix_product_variants_product_id"), table_name="product_variants")
    op.drop_index(op.f("ix_product_variants_campaign_id"), table_name="product_variants")
    op.drop_table("product_variants")
    op.drop_column("products", "options")
