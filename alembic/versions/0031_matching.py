"""Matching: a space's pledge to match a campaign's backers 1:1 up to a cap

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 09:10:00

- pledges.is_match: the pledge is a sponsor's match (no reward; its amount is the cap until the close fixes it at
  LEAST(cap, the other counted pledges)); at most one open match per campaign (a partial unique index).
- matches: the match's terms beside its pledge: the space, the sponsor's name shown, the cap, who set it up.
- The ledger gains the account `match_clearing`: the outside world's side of a collected match, as
  `stripe_clearing` is of a backer's pledge.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNTS_BEFORE = (
    "stripe_clearing",
    "escrow",
    "platform_fees",
    "sponsor_fees",
    "processor_fees",
    "maker_payable",
    "backer_refunds",
    "disputed",
    "dispute_losses",
    "risk_fund",
)
ACCOUNTS_AFTER = (*ACCOUNTS_BEFORE, "match_clearing")


def _accounts(accounts: tuple[str, ...]) -> None:
    known = f"kind IN ({', '.join(repr(v) for v in accounts)})"
    op.drop_constraint(op.f("ck_ledger_accounts_kind_known"), "ledger_accounts", type_="check")
    op.create_check_constraint(op.f("ck_ledger_accounts_kind_known"), "ledger_accounts", known)


def upgrade() -> None:
    op.add_column("pledges", sa.Column("is_match", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.create_index(
        "uq_pledges_one_match_per_campaign",
        "pledges",
        ["campaign_id"],
        unique=True,
        postgresql_where=sa.text("is_match AND status NOT IN ('cancelled', 'dropped')"),
    )
    op.create_table(
        "matches",
        sa.Column("pledge_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("space_id", sa.Uuid(), nullable=False),
        sa.Column("sponsor_name", sa.String(length=120), nullable=False),
        sa.Column("cap", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("cap > 0", name=op.f("ck_matches_cap_positive")),
        sa.CheckConstraint("length(sponsor_name) > 0", name=op.f("ck_matches_sponsor_name_given")),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledges.id"], name=op.f("fk_matches_pledge_id_pledges")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_matches_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.id"], name=op.f("fk_matches_space_id_spaces")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_matches_created_by_users")),
        sa.PrimaryKeyConstraint("pledge_id", name=op.f("pk_matches")),
    )
    op.create_index(op.f("ix_matches_campaign_id"), "matches", ["campaign_id"])
    _accounts(ACCOUNTS_AFTER)


def downgrade() -> None:
    _accounts(ACCOUNTS_BEFORE)
    op.drop_index(op.f("ix_matches_campaign_id"), table_name="matches")
    op.drop_table("matches")
    op.drop_index("uq_pledges_one_match_per_campaign", table_name="pledges")
    op.drop_column("pledges", "is_match")
