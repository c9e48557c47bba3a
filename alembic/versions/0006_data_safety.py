"""Nothing that money depends on is deleted, and what it records never changes: triggers on the money tables

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 14:00:00

The rule of each table (the ledger's own tables are append-only since 0003):

| table           | DELETE  | UPDATE: what moves                            | UPDATE: what never changes                   |
|-----------------|---------|-----------------------------------------------|----------------------------------------------|
| pledges         | refused | status, tier, amount, address, timestamps     | id, campaign, backer, currency               |
| webhook_events  | refused | processed_at, attempts, last_error            | id, type, object_id, payload (Stripe's word) |
| charge_attempts | refused | status, payment_intent_id, failure, finished  | id, pledge, attempt, idempotency key, amount, currency, card |
| refunds         | refused | status, stripe_refund_id, failure, timestamps | id, campaign, pledge, reference, amount, currency, payment intent |
| charge_terms    | refused | retry_window_seconds                          | campaign, platform and sponsor fees          |
| payouts         | refused | status, paid_at, bank_reference, paid_by      | id, milestone, campaign, amount, currency    |

TRUNCATE still works (the test suite empties every table between tests with it): row triggers do not fire on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
# After the tables it guards: payouts (0003) and charge attempts, refunds, charge terms (0005).
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the columns that never change once the row exists
MONEY_RECORDS: dict[str, tuple[str, ...]] = {
    "pledges": ("id", "campaign_id", "backer_id", "currency"),
    "webhook_events": ("id", "type", "object_id", "payload"),
    "charge_attempts": ("id", "pledge_id", "attempt", "idempotency_key", "amount", "currency", "payment_method_id"),
    "refunds": ("id", "campaign_id", "pledge_id", "reference", "amount", "currency", "payment_intent_id"),
    "charge_terms": ("campaign_id", "platform_fee_bps", "sponsor_fee_bps"),
    "payouts": ("id", "milestone_id", "campaign_id", "amount", "currency"),
}

# Autogenerate cannot see these; tests/test_data_safety.py proves they work. One statement per string: asyncpg
# prepares each.
FUNCTIONS = (
    """
CREATE FUNCTION money_record_is_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a row of % is never deleted: money depends on it; change its status instead', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;
""",
    """
CREATE FUNCTION money_facts_never_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    fact text;
BEGIN
    -- TG_ARGV names the columns that record what happened; the others (status, timestamps) may move.
    FOREACH fact IN ARRAY TG_ARGV LOOP
        IF (to_jsonb(OLD) -> fact) IS DISTINCT FROM (to_jsonb(NEW) -> fact) THEN
            RAISE EXCEPTION '%.% never changes once recorded', TG_TABLE_NAME, fact
                USING ERRCODE = 'restrict_violation';
        END IF;
    END LOOP;
    RETURN NEW;
END;
$$;
""",
)


def _triggers(table: str, facts: tuple[str, ...]) -> tuple[str, str]:
    columns = ", ".join(facts)
    arguments = ", ".join(f"'{fact}'" for fact in facts)
    return (
        f"""
CREATE TRIGGER {table}_never_deleted
    BEFORE DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION money_record_is_never_deleted();
""",
        f"""
CREATE TRIGGER {table}_facts_never_change
    BEFORE UPDATE OF {columns} ON {table}
    FOR EACH ROW EXECUTE FUNCTION money_facts_never_change({arguments});
""",
    )


def upgrade() -> None:
    for statement in FUNCTIONS:
        op.execute(statement)
    for table, facts in MONEY_RECORDS.items():
        for statement in _triggers(table, facts):
            op.execute(statement)


def downgrade() -> None:
    for table in MONEY_RECORDS:
        op.execute(f"DROP TRIGGER {table}_facts_never_change ON {table}")
        op.execute(f"DROP TRIGGER {table}_never_deleted ON {table}")
    op.execute("DROP FUNCTION money_facts_never_change()")
    op.execute("DROP FUNCTION money_record_is_never_deleted()")
