"""The pledge manager: add-ons bought after the close, charged at once with the saved card

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 06:10:00

- add_on_charges: one row per add-on bought after the close, recorded (its units taken) before Stripe is called,
  with its idempotency key made of the pledge line it becomes once paid. Never deleted, and what it records never
  changes (the money triggers of 0006).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0023"
# Both this and pledge-extras's migration add to 0019; this branch merged that one, so one chain: renumber at merge.
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FACTS = (
    "id",
    "pledge_id",
    "item_id",
    "add_on_id",
    "quantity",
    "unit_amount",
    "shipping_fee",
    "idempotency_key",
    "amount",
    "currency",
    "payment_method_id",
)


def upgrade() -> None:
    op.create_table(
        "add_on_charges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pledge_id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("add_on_id", sa.Uuid(), nullable=False),
        sa.Column("variant_id", sa.Uuid(), nullable=True),
        sa.Column("variant", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("shipping_fee", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("payment_method_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="started", nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("failure_code", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('started', 'succeeded', 'failed', 'unknown')", name=op.f("ck_add_on_charges_status_known")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_add_on_charges_amount_positive")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_add_on_charges_quantity_positive")),
        sa.ForeignKeyConstraint(["add_on_id"], ["add_ons.id"], name=op.f("fk_add_on_charges_add_on_id_add_ons")),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledges.id"], name=op.f("fk_add_on_charges_pledge_id_pledges")),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["product_variants.id"], name=op.f("fk_add_on_charges_variant_id_product_variants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_add_on_charges")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_add_on_charges_idempotency_key")),
        sa.UniqueConstraint("item_id", name=op.f("uq_add_on_charges_item_id")),
    )
    op.create_index(op.f("ix_add_on_charges_pledge_id"), "add_on_charges", ["pledge_id"], unique=False)
    op.create_index(
        "ix_add_on_charges_in_doubt",
        "add_on_charges",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('started', 'unknown')"),
    )
    columns = ", ".join(FACTS)
    arguments = ", ".join(f"'{fact}'" for fact in FACTS)
    op.execute(
        "CREATE TRIGGER add_on_charges_never_deleted BEFORE DELETE ON add_on_charges"
        " FOR EACH ROW EXECUTE FUNCTION money_record_is_never_deleted()"
    )
    op.execute(
        f"CREATE TRIGGER add_on_charges_facts_never_change BEFORE UPDATE OF {columns} ON add_on_charges"
        f" FOR EACH ROW EXECUTE FUNCTION money_facts_never_change({arguments})"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER add_on_charges_facts_never_change ON add_on_charges")
    op.execute("DROP TRIGGER add_on_charges_never_deleted ON add_on_charges")
    op.drop_index(
        "ix_add_on_charges_in_doubt",
        table_name="add_on_charges",
        postgresql_where=sa.text("status IN ('started', 'unknown')"),
    )
    op.drop_index(op.f("ix_add_on_charges_pledge_id"), table_name="add_on_charges")
    op.drop_table("add_on_charges")
