"""Allocations: one foreign key to the batch and its campaign together, instead of one to each

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 10:10:00

An allocation's (batch_id, campaign_id) now refers to batches (id, campaign_id) (a new unique constraint on batches),
ON DELETE CASCADE as both keys did: an allocation is always of its batch's campaign, and a campaign's deletion still
takes its allocations with its batches. Each allocation written costs one check fewer: a campaign's first plan
writes one row per paid pledge (100,000 in bench/fulfillment.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_unique_constraint("uq_batches_id_campaign", "batches", ["id", "campaign_id"])
    op.drop_constraint("fk_allocations_batch_id_batches", "allocations", type_="foreignkey")
    op.drop_constraint("fk_allocations_campaign_id_campaigns", "allocations", type_="foreignkey")
    op.create_foreign_key(
        "fk_allocations_batch_id_batches",
        "allocations",
        "batches",
        ["batch_id", "campaign_id"],
        ["id", "campaign_id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint("fk_allocations_batch_id_batches", "allocations", type_="foreignkey")
    op.create_foreign_key(
        "fk_allocations_campaign_id_campaigns",
        "allocations",
        "campaigns",
        ["campaign_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_foreign_key(
        "fk_allocations_batch_id_batches", "allocations", "batches", ["batch_id"], ["id"], ondelete="CASCADE"
    )
    op.drop_constraint("uq_batches_id_campaign", "batches", type_="unique")
