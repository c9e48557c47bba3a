"""The escrow ledger (double entry, balanced and append-only by the database), milestones and payouts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Autogenerate cannot see these; tests/test_ledger.py proves they work. One statement per string: asyncpg prepares each.
LEDGER_TRIGGERS = (
    """
CREATE FUNCTION ledger_transaction_is_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    checked uuid;
    unbalanced record;
BEGIN
    IF TG_TABLE_NAME = 'ledger_transactions' THEN
        checked := NEW.id;
    ELSE
        checked := NEW.transaction_id;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ledger_entries WHERE transaction_id = checked) THEN
        RAISE EXCEPTION 'ledger transaction % has no entries', checked USING ERRCODE = 'check_violation';
    END IF;
    SELECT currency, sum(amount) AS total INTO unbalanced
      FROM ledger_entries WHERE transaction_id = checked
     GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced: its % entries sum to %',
            checked, unbalanced.currency, unbalanced.total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
""",
    """
CREATE CONSTRAINT TRIGGER ledger_entries_balanced
    AFTER INSERT ON ledger_entries DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_transaction_is_balanced();
""",
    """
CREATE CONSTRAINT TRIGGER ledger_transactions_balanced
    AFTER INSERT ON ledger_transactions DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_transaction_is_balanced();
""",
    """
CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % is refused; record a correcting transaction instead',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$;
""",
    """
CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
""",
    """
CREATE TRIGGER ledger_transactions_append_only
    BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
""",
)


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_ledger_accounts_currency_iso")),
        sa.CheckConstraint(
            "kind IN ('stripe_clearing', 'escrow', 'platform_fees', 'sponsor_fees', 'processor_fees', 'maker_payable', 'backer_refunds')",
            name=op.f("ck_ledger_accounts_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_ledger_accounts_campaign_id_campaigns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("campaign_id", "kind", "currency", name="uq_ledger_accounts_campaign_kind_currency"),
        sa.UniqueConstraint("id", "campaign_id", "currency", name="uq_ledger_accounts_id_campaign_currency"),
    )
    op.create_table(
        "milestones",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("share_bps", sa.Integer(), nullable=False),
        sa.Column("unlocks_on", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "(status = 'released') = (amount IS NOT NULL AND released_at IS NOT NULL)",
            name=op.f("ck_milestones_amount_iff_released"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'requested', 'released', 'cancelled')", name=op.f("ck_milestones_status_known")
        ),
        sa.CheckConstraint(
            "unlocks_on IN ('funded', 'first_batch_confirmed', 'shipping_done')",
            name=op.f("ck_milestones_unlocks_on_known"),
        ),
        sa.CheckConstraint("amount IS NULL OR amount >= 0", name=op.f("ck_milestones_amount_nonnegative")),
        sa.CheckConstraint("share_bps BETWEEN 1 AND 10000", name=op.f("ck_milestones_share_range")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_milestones_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["released_by"], ["users.id"], name=op.f("fk_milestones_released_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_milestones")),
        sa.UniqueConstraint("campaign_id", "position", name="uq_milestones_campaign_position"),
    )
    op.create_table(
        "payouts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("milestone_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("bank_reference", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "(status = 'paid') = (paid_at IS NOT NULL AND bank_reference IS NOT NULL)",
            name=op.f("ck_payouts_paid_iff_dated"),
        ),
        sa.CheckConstraint("status IN ('pending', 'paid')", name=op.f("ck_payouts_status_known")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payouts_amount_positive")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_payouts_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["milestone_id"], ["milestones.id"], name=op.f("fk_payouts_milestone_id_milestones")),
        sa.ForeignKeyConstraint(["paid_by"], ["users.id"], name=op.f("fk_payouts_paid_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("milestone_id", name=op.f("uq_payouts_milestone_id")),
    )
    op.create_index(op.f("ix_payouts_campaign_id"), "payouts", ["campaign_id"], unique=False)
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("pledge_id", sa.Uuid(), nullable=True),
        sa.Column("memo", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "kind IN ('pledge_collected', 'platform_fee', 'sponsor_fee', 'processor_fee', 'release', 'refund')",
            name=op.f("ck_ledger_transactions_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_ledger_transactions_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledges.id"], name=op.f("fk_ledger_transactions_pledge_id_pledges")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("id", "campaign_id", name="uq_ledger_transactions_id_campaign"),
        sa.UniqueConstraint("kind", "reference", name="uq_ledger_transactions_kind_reference"),
    )
    op.create_index("ix_ledger_transactions_campaign_id", "ledger_transactions", ["campaign_id"], unique=False)
    op.create_index(op.f("ix_ledger_transactions_pledge_id"), "ledger_transactions", ["pledge_id"], unique=False)
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_entries_amount_nonzero")),
        sa.ForeignKeyConstraint(
            ["account_id", "campaign_id", "currency"],
            ["ledger_accounts.id", "ledger_accounts.campaign_id", "ledger_accounts.currency"],
            name=op.f("fk_ledger_entries_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id", "campaign_id"],
            ["ledger_transactions.id", "ledger_transactions.campaign_id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index("ix_ledger_entries_account_id", "ledger_entries", ["account_id"], unique=False)
    op.create_index("ix_ledger_entries_transaction_id", "ledger_entries", ["transaction_id"], unique=False)
    op.add_column("campaigns", sa.Column("first_batch_confirmed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("spaces", sa.Column("milestone_plan", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    for statement in LEDGER_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_column("spaces", "milestone_plan")
    op.drop_column("campaigns", "first_batch_confirmed_at")
    op.drop_index("ix_ledger_entries_transaction_id", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_account_id", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index(op.f("ix_ledger_transactions_pledge_id"), table_name="ledger_transactions")
    op.drop_index("ix_ledger_transactions_campaign_id", table_name="ledger_transactions")
    op.drop_table("ledger_transactions")
    op.drop_index(op.f("ix_payouts_campaign_id"), table_name="payouts")
    op.drop_table("payouts")
    op.drop_table("milestones")
    op.drop_table("ledger_accounts")
    op.execute("DROP FUNCTION ledger_transaction_is_balanced()")
    op.execute("DROP FUNCTION ledger_is_append_only()")
