"""Add-on charges also carry an address change's shipping difference

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 11:45:00

An address change after funding that makes the shipping dearer is charged at once with the saved card, by the same
machinery as an add-on bought in the pledge manager (recorded before Stripe is called, exactly once, settled by the
same sweep and job): its `add_on_charges` row has no add-on and no SKU, and carries the new `address` it pays for,
applied only when the charge succeeded. A row is one or the other, never both.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("add_on_charges", sa.Column("address", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.alter_column("add_on_charges", "add_on_id", existing_type=sa.Uuid(), nullable=True)
    op.alter_column("add_on_charges", "sku", existing_type=sa.String(64), nullable=True)
    op.create_check_constraint(
        op.f("ck_add_on_charges_add_on_or_address"),
        "add_on_charges",
        "(add_on_id IS NULL) = (address IS NOT NULL) AND (add_on_id IS NULL) = (sku IS NULL)",
    )


def downgrade() -> None:
    op.execute("DELETE FROM add_on_charges WHERE address IS NOT NULL")
    op.drop_constraint(op.f("ck_add_on_charges_add_on_or_address"), "add_on_charges", type_="check")
    op.alter_column("add_on_charges", "sku", existing_type=sa.String(64), nullable=False)
    op.alter_column("add_on_charges", "add_on_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_column("add_on_charges", "address")
