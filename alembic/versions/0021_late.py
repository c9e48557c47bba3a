"""Batch dates: the maker's planned production and ship dates per batch, and every change to them with its reason

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 06:10:00

- batch_schedules: one row per campaign and batch number (not per batch row: planning replaces unconfirmed batch
  rows with new ids, and the dates belong to the batch's place in the plan). `announced_ship_on` is the ship date
  backers were last told of, so that slips are measured against what they were promised.
- batch_schedule_changes: append-only history, one row per change, with the maker's reason.
- late_rewards: the tiers a campaign keeps selling after its deadline ("late pledges"), at their own price and with
  an optional limit whose `remaining` is taken by a conditional UPDATE under CHECK (remaining >= 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = (
    """
CREATE FUNCTION batch_schedule_changes_are_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The one change allowed: forgetting who made it, when their account is deleted (ON DELETE SET NULL).
    IF NEW.changed_by IS NULL
       AND ROW(NEW.id, NEW.campaign_id, NEW.number, NEW.production_on, NEW.ship_on, NEW.previous_production_on,
               NEW.previous_ship_on, NEW.reason, NEW.changed_at, NEW.backers_told)
           IS NOT DISTINCT FROM
           ROW(OLD.id, OLD.campaign_id, OLD.number, OLD.production_on, OLD.ship_on, OLD.previous_production_on,
               OLD.previous_ship_on, OLD.reason, OLD.changed_at, OLD.backers_told) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'batch date history is append-only: % refused', TG_OP USING ERRCODE = 'restrict_violation';
END;
$$;
""",
    """
CREATE TRIGGER batch_schedule_changes_append_only
    BEFORE UPDATE ON batch_schedule_changes
    FOR EACH ROW EXECUTE FUNCTION batch_schedule_changes_are_history();
""",
)


def upgrade() -> None:
    op.create_table(
        "batch_schedules",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("production_on", sa.Date(), nullable=False),
        sa.Column("ship_on", sa.Date(), nullable=False),
        sa.Column("announced_ship_on", sa.Date(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("number > 0", name=op.f("ck_batch_schedules_number_positive")),
        sa.CheckConstraint("ship_on >= production_on", name=op.f("ck_batch_schedules_ships_after_production")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_batch_schedules_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("campaign_id", "number", name=op.f("pk_batch_schedules")),
    )
    op.create_table(
        "batch_schedule_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("production_on", sa.Date(), nullable=False),
        sa.Column("ship_on", sa.Date(), nullable=False),
        sa.Column("previous_production_on", sa.Date(), nullable=True),
        sa.Column("previous_ship_on", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.Uuid(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("backers_told", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_batch_schedule_changes_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["changed_by"], ["users.id"], name=op.f("fk_batch_schedule_changes_changed_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_schedule_changes")),
    )
    op.create_index(
        op.f("ix_batch_schedule_changes_campaign_id"), "batch_schedule_changes", ["campaign_id"], unique=False
    )
    for statement in APPEND_ONLY:
        op.execute(statement)
    op.create_table(
        "late_rewards",
        sa.Column("tier_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("quantity_limit", sa.Integer(), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("price > 0", name=op.f("ck_late_rewards_price_positive")),
        sa.CheckConstraint("quantity_limit IS NULL OR quantity_limit > 0", name=op.f("ck_late_rewards_limit_positive")),
        sa.CheckConstraint(
            "(quantity_limit IS NULL) = (remaining IS NULL) AND remaining >= 0 AND remaining <= quantity_limit",
            name=op.f("ck_late_rewards_remaining_within_limit"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_late_rewards_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tier_id"], ["tiers.id"], name=op.f("fk_late_rewards_tier_id_tiers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tier_id", name=op.f("pk_late_rewards")),
    )
    op.create_index(op.f("ix_late_rewards_campaign_id"), "late_rewards", ["campaign_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_late_rewards_campaign_id"), table_name="late_rewards")
    op.drop_table("late_rewards")
    op.execute("DROP TRIGGER batch_schedule_changes_append_only ON batch_schedule_changes")
    op.execute("DROP FUNCTION batch_schedule_changes_are_history()")
    op.drop_index(op.f("ix_batch_schedule_changes_campaign_id"), table_name="batch_schedule_changes")
    op.drop_table("batch_schedule_changes")
    op.drop_table("batch_schedules")
