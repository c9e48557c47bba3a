"""Late add-ons: the add-ons a campaign keeps selling after its deadline, beside its late rewards (tiers)

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 09:55:00

- late_add_ons: one row per add-on the maker keeps on sale after the deadline, at its late price and with an optional
  limit whose `remaining` is taken by a conditional UPDATE under CHECK (remaining >= 0), as late_rewards' is. It
  announces its changes on kindling_campaign_changed, like late_rewards, so the anonymous page cache forgets the page.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "late_add_ons",
        sa.Column("add_on_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("quantity_limit", sa.Integer(), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("price > 0", name=op.f("ck_late_add_ons_price_positive")),
        sa.CheckConstraint("quantity_limit IS NULL OR quantity_limit > 0", name=op.f("ck_late_add_ons_limit_positive")),
        sa.CheckConstraint(
            "(quantity_limit IS NULL) = (remaining IS NULL) AND remaining >= 0 AND remaining <= quantity_limit",
            name=op.f("ck_late_add_ons_remaining_within_limit"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_late_add_ons_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["add_on_id"], ["add_ons.id"], name=op.f("fk_late_add_ons_add_on_id_add_ons"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("add_on_id", name=op.f("pk_late_add_ons")),
    )
    op.create_index(op.f("ix_late_add_ons_campaign_id"), "late_add_ons", ["campaign_id"], unique=False)
    op.execute(
        "CREATE TRIGGER late_add_ons_change_notice AFTER INSERT OR UPDATE OR DELETE ON late_add_ons "
        "FOR EACH ROW EXECUTE FUNCTION campaign_part_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER late_add_ons_change_notice ON late_add_ons")
    op.drop_index(op.f("ix_late_add_ons_campaign_id"), table_name="late_add_ons")
    op.drop_table("late_add_ons")
