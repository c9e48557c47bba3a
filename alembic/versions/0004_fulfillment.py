"""Fulfillment: manufacturing batches (frozen by the database once confirmed), allocations, shipments, address surveys

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Autogenerate cannot see these; tests/test_fulfillment_service.py proves they work. One statement per string.
FROZEN_BATCH_TRIGGERS = (
    """
CREATE FUNCTION batch_is_frozen_once_confirmed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'planned' THEN
            RAISE EXCEPTION 'batch % is %: a confirmed batch is never deleted', OLD.id, OLD.status
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'planned' THEN
        IF NEW.status = 'planned'
           OR (NEW.campaign_id, NEW.number, NEW.units, NEW.spares)
              IS DISTINCT FROM (OLD.campaign_id, OLD.number, OLD.units, OLD.spares) THEN
            RAISE EXCEPTION 'batch % is %: a confirmed batch never changes', OLD.id, OLD.status
                USING ERRCODE = 'restrict_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
""",
    """
CREATE TRIGGER batches_frozen_once_confirmed
    BEFORE UPDATE OR DELETE ON batches
    FOR EACH ROW EXECUTE FUNCTION batch_is_frozen_once_confirmed();
""",
    """
CREATE FUNCTION allocation_of_confirmed_batch_is_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.pledge_id = OLD.pledge_id AND NEW.batch_id = OLD.batch_id AND NEW.campaign_id = OLD.campaign_id THEN
            RETURN NEW;  -- only the shipping list changes: a late address joins the next open list
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM batches WHERE id = OLD.batch_id AND status <> 'planned') THEN
        RAISE EXCEPTION 'pledge % is allocated to confirmed batch %: that never changes', OLD.pledge_id, OLD.batch_id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
""",
    """
CREATE TRIGGER allocations_of_confirmed_batches_kept
    BEFORE UPDATE OR DELETE ON allocations
    FOR EACH ROW EXECUTE FUNCTION allocation_of_confirmed_batch_is_kept();
""",
)


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("address_lock_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("campaigns", sa.Column("packaging_weight_grams", sa.Integer(), server_default="0", nullable=False))
    op.create_check_constraint(
        op.f("ck_campaigns_packaging_weight_nonnegative"), "campaigns", "packaging_weight_grams >= 0"
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="planned", nullable=False),
        sa.Column("units", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("spares", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("production_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'planned') = (confirmed_at IS NULL)", name=op.f("ck_batches_confirmed_iff_not_planned")
        ),
        sa.CheckConstraint(
            "status IN ('planned', 'confirmed', 'in_production', 'shipped')", name=op.f("ck_batches_status_known")
        ),
        sa.CheckConstraint("number > 0", name=op.f("ck_batches_number_positive")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_batches_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("campaign_id", "number", name="uq_batches_campaign_number"),
    )
    op.create_table(
        "allocations",
        sa.Column("pledge_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("list_batch_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_allocations_batch_id_batches"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_allocations_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["list_batch_id"], ["batches.id"], name=op.f("fk_allocations_list_batch_id_batches"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledges.id"], name=op.f("fk_allocations_pledge_id_pledges")),
        sa.PrimaryKeyConstraint("pledge_id", name=op.f("pk_allocations")),
    )
    op.create_index(op.f("ix_allocations_batch_id"), "allocations", ["batch_id"], unique=False)
    op.create_index(op.f("ix_allocations_campaign_id"), "allocations", ["campaign_id"], unique=False)
    op.create_index(op.f("ix_allocations_list_batch_id"), "allocations", ["list_batch_id"], unique=False)
    op.create_table(
        "shipments",
        sa.Column("pledge_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("tracking_number", sa.String(length=64), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_shipments_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledges.id"], name=op.f("fk_shipments_pledge_id_pledges")),
        sa.PrimaryKeyConstraint("pledge_id", name=op.f("pk_shipments")),
    )
    op.create_index(op.f("ix_shipments_campaign_id"), "shipments", ["campaign_id"], unique=False)
    op.create_table(
        "address_requests",
        sa.Column("pledge_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("surveyed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_address_requests_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledges.id"], name=op.f("fk_address_requests_pledge_id_pledges")),
        sa.PrimaryKeyConstraint("pledge_id", name=op.f("pk_address_requests")),
    )
    op.create_index(op.f("ix_address_requests_campaign_id"), "address_requests", ["campaign_id"], unique=False)
    for statement in FROZEN_BATCH_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER allocations_of_confirmed_batches_kept ON allocations")
    op.execute("DROP FUNCTION allocation_of_confirmed_batch_is_kept()")
    op.execute("DROP TRIGGER batches_frozen_once_confirmed ON batches")
    op.execute("DROP FUNCTION batch_is_frozen_once_confirmed()")
    op.drop_index(op.f("ix_address_requests_campaign_id"), table_name="address_requests")
    op.drop_table("address_requests")
    op.drop_index(op.f("ix_shipments_campaign_id"), table_name="shipments")
    op.drop_table("shipments")
    op.drop_index(op.f("ix_allocations_list_batch_id"), table_name="allocations")
    op.drop_index(op.f("ix_allocations_campaign_id"), table_name="allocations")
    op.drop_index(op.f("ix_allocations_batch_id"), table_name="allocations")
    op.drop_table("allocations")
    op.drop_table("batches")
    op.drop_constraint(op.f("ck_campaigns_packaging_weight_nonnegative"), "campaigns", type_="check")
    op.drop_column("campaigns", "packaging_weight_grams")
    op.drop_column("campaigns", "address_lock_at")
