"""A risk-compensation fund per space, and the province of a space

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 06:10:00

- spaces.fund_share_bps: the share of the space's sponsor fee that goes into its fund at each collection;
  spaces.fund_cap and spaces.fund_currency: the most the fund tops up the refunds of one suspended campaign, in minor
  units of the fund's currency (only campaigns counting in it pay into the fund or draw on it).
- charge_terms.fund_share_bps: the share a successful campaign's collections are booked with, fixed when it closes,
  and one of the facts of charge_terms that never change once recorded (0006).
- The ledger gains the account `risk_fund` (a campaign's position with its space's fund: what it paid in less what its
  backers drew) and two kinds of transaction: fund_contribution (escrow -> risk_fund) and fund_payout
  (risk_fund -> escrow, topping up a suspended campaign's refunds).
- spaces.province: the province (or state) a space is in, beside its city, for discovery by region; '' where unknown.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
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
)
ACCOUNTS_AFTER = (*ACCOUNTS_BEFORE, "risk_fund")
KINDS_BEFORE = (
    "pledge_collected",
    "platform_fee",
    "sponsor_fee",
    "processor_fee",
    "release",
    "refund",
    "dispute_opened",
    "dispute_won",
    "dispute_lost",
)
KINDS_AFTER = (*KINDS_BEFORE, "fund_contribution", "fund_payout")


def _known(values: tuple[str, ...]) -> str:
    return f"kind IN ({', '.join(repr(v) for v in values)})"


def _kinds(accounts: tuple[str, ...], kinds: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_ledger_accounts_kind_known"), "ledger_accounts", type_="check")
    op.create_check_constraint(op.f("ck_ledger_accounts_kind_known"), "ledger_accounts", _known(accounts))
    op.drop_constraint(op.f("ck_ledger_transactions_kind_known"), "ledger_transactions", type_="check")
    op.create_check_constraint(op.f("ck_ledger_transactions_kind_known"), "ledger_transactions", _known(kinds))


TERMS_FACTS_BEFORE = ("campaign_id", "platform_fee_bps", "sponsor_fee_bps")
TERMS_FACTS_AFTER = (*TERMS_FACTS_BEFORE, "fund_share_bps")


def _terms_facts_trigger(facts: tuple[str, ...]) -> None:
    op.execute("DROP TRIGGER charge_terms_facts_never_change ON charge_terms")
    columns = ", ".join(facts)
    arguments = ", ".join(f"'{fact}'" for fact in facts)
    op.execute(
        f"""
CREATE TRIGGER charge_terms_facts_never_change
    BEFORE UPDATE OF {columns} ON charge_terms
    FOR EACH ROW EXECUTE FUNCTION money_facts_never_change({arguments});
"""
    )


def upgrade() -> None:
    _kinds(ACCOUNTS_AFTER, KINDS_AFTER)
    op.add_column("spaces", sa.Column("fund_share_bps", sa.Integer(), server_default="0", nullable=False))
    op.add_column("spaces", sa.Column("fund_cap", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("spaces", sa.Column("fund_currency", sa.String(length=3), server_default="CNY", nullable=False))
    op.create_check_constraint(op.f("ck_spaces_fund_share_range"), "spaces", "fund_share_bps BETWEEN 0 AND 10000")
    op.create_check_constraint(op.f("ck_spaces_fund_cap_not_negative"), "spaces", "fund_cap >= 0")
    op.create_check_constraint(op.f("ck_spaces_fund_currency_iso"), "spaces", "fund_currency ~ '^[A-Z]{3}$'")
    op.add_column("spaces", sa.Column("province", sa.String(length=120), server_default="", nullable=False))
    op.add_column("charge_terms", sa.Column("fund_share_bps", sa.Integer(), server_default="0", nullable=False))
    op.create_check_constraint(
        op.f("ck_charge_terms_fund_share_range"), "charge_terms", "fund_share_bps BETWEEN 0 AND 10000"
    )
    _terms_facts_trigger(TERMS_FACTS_AFTER)


def downgrade() -> None:
    _terms_facts_trigger(TERMS_FACTS_BEFORE)
    op.drop_column("charge_terms", "fund_share_bps")
    op.drop_column("spaces", "province")
    op.drop_column("spaces", "fund_currency")
    op.drop_column("spaces", "fund_cap")
    op.drop_column("spaces", "fund_share_bps")
    # Fund movements recorded meanwhile would break the narrower checks: a downgrade refuses them rather than lose them.
    _kinds(ACCOUNTS_BEFORE, KINDS_BEFORE)
