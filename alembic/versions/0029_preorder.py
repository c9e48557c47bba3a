"""Pre-orders: a pledge bought after the deadline, paid at once on-session with a PaymentIntent the server makes

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 09:15:00

- pledges.late: bought from a late reward after the campaign was funded (false for every existing pledge).
- pledges.payment_intent_id / payment_intent_client_secret: the PaymentIntent the buyer confirms in the browser.
- The campaign page now shows the late rewards (price, what is left) and the next batch's ship month: late_rewards and
  batch_schedules announce their changes on kindling_campaign_changed (migration 0007's campaign_part_changed), so the
  anonymous page cache forgets the page.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


ANNOUNCED = ("late_rewards", "batch_schedules")


def upgrade() -> None:
    for table in ANNOUNCED:
        op.execute(
            f"CREATE TRIGGER {table}_change_notice AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION campaign_part_changed()"
        )
    op.add_column("pledges", sa.Column("late", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column("pledges", sa.Column("payment_intent_id", sa.String(length=255), nullable=True))
    op.add_column("pledges", sa.Column("payment_intent_client_secret", sa.String(length=255), nullable=True))
    op.create_unique_constraint(op.f("uq_pledges_payment_intent_id"), "pledges", ["payment_intent_id"])
    op.create_check_constraint(
        op.f("ck_pledges_payment_intent_only_late"), "pledges", "payment_intent_id IS NULL OR late"
    )


def downgrade() -> None:
    for table in ANNOUNCED:
        op.execute(f"DROP TRIGGER {table}_change_notice ON {table}")
    op.drop_constraint(op.f("ck_pledges_payment_intent_only_late"), "pledges", type_="check")
    op.drop_constraint(op.f("uq_pledges_payment_intent_id"), "pledges", type_="unique")
    op.drop_column("pledges", "payment_intent_client_secret")
    op.drop_column("pledges", "payment_intent_id")
    op.drop_column("pledges", "late")
