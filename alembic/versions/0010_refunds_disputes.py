"""Disputes in the ledger, and refunds of one pledge asked for by a person

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 23:50:00

The ledger gains two accounts, `disputed` (money a backer's bank has taken back while the dispute is open) and
`dispute_losses` (disputes lost), and three kinds of transaction: dispute_opened (escrow -> disputed), dispute_won
(disputed -> escrow) and dispute_lost (disputed -> dispute_losses). A refund records who asked for it and why; both
join the facts that never change once recorded (0006).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
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
)
ACCOUNTS_AFTER = (*ACCOUNTS_BEFORE, "disputed", "dispute_losses")
KINDS_BEFORE = ("pledge_collected", "platform_fee", "sponsor_fee", "processor_fee", "release", "refund")
KINDS_AFTER = (*KINDS_BEFORE, "dispute_opened", "dispute_won", "dispute_lost")
REFUND_FACTS_BEFORE = ("id", "campaign_id", "pledge_id", "reference", "amount", "currency", "payment_intent_id")
REFUND_FACTS_AFTER = (*REFUND_FACTS_BEFORE, "requested_by", "reason")


def _known(values: tuple[str, ...]) -> str:
    return f"kind IN ({', '.join(repr(v) for v in values)})"


def _refund_facts_trigger(facts: tuple[str, ...]) -> None:
    op.execute("DROP TRIGGER refunds_facts_never_change ON refunds")
    columns = ", ".join(facts)
    arguments = ", ".join(f"'{fact}'" for fact in facts)
    op.execute(
        f"""
CREATE TRIGGER refunds_facts_never_change
    BEFORE UPDATE OF {columns} ON refunds
    FOR EACH ROW EXECUTE FUNCTION money_facts_never_change({arguments});
"""
    )


def _kinds(accounts: tuple[str, ...], kinds: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_ledger_accounts_kind_known"), "ledger_accounts", type_="check")
    op.create_check_constraint(op.f("ck_ledger_accounts_kind_known"), "ledger_accounts", _known(accounts))
    op.drop_constraint(op.f("ck_ledger_transactions_kind_known"), "ledger_transactions", type_="check")
    op.create_check_constraint(op.f("ck_ledger_transactions_kind_known"), "ledger_transactions", _known(kinds))


def upgrade() -> None:
    _kinds(ACCOUNTS_AFTER, KINDS_AFTER)
    op.add_column("refunds", sa.Column("requested_by", sa.Uuid(), nullable=True))
    op.add_column("refunds", sa.Column("reason", sa.Text(), nullable=True))
    op.create_foreign_key(op.f("fk_refunds_requested_by_users"), "refunds", "users", ["requested_by"], ["id"])
    _refund_facts_trigger(REFUND_FACTS_AFTER)


def downgrade() -> None:
    _refund_facts_trigger(REFUND_FACTS_BEFORE)
    op.drop_constraint(op.f("fk_refunds_requested_by_users"), "refunds", type_="foreignkey")
    op.drop_column("refunds", "reason")
    op.drop_column("refunds", "requested_by")
    # Disputes recorded meanwhile would break the narrower checks: a downgrade refuses them rather than lose them.
    _kinds(ACCOUNTS_BEFORE, KINDS_BEFORE)
