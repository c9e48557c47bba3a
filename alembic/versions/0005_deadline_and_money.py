"""The deadline and the money: charge terms fixed at close, charge attempts, refunds, and the pledge's retry window

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "charge_terms",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("platform_fee_bps", sa.Integer(), nullable=False),
        sa.Column("sponsor_fee_bps", sa.Integer(), nullable=False),
        sa.Column("retry_window_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("platform_fee_bps BETWEEN 0 AND 10000", name=op.f("ck_charge_terms_platform_fee_range")),
        sa.CheckConstraint("retry_window_seconds > 0", name=op.f("ck_charge_terms_retry_window_positive")),
        sa.CheckConstraint("sponsor_fee_bps BETWEEN 0 AND 10000", name=op.f("ck_charge_terms_sponsor_fee_range")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_charge_terms_campaign_id_campaigns")),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_charge_terms")),
    )
    op.create_table(
        "charge_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pledge_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_method_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="started", nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("failure_code", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('started', 'succeeded', 'failed', 'unknown')", name=op.f("ck_charge_attempts_status_known")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_charge_attempts_amount_positive")),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_charge_attempts_attempt_positive")),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledges.id"], name=op.f("fk_charge_attempts_pledge_id_pledges")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charge_attempts")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_charge_attempts_idempotency_key")),
        sa.UniqueConstraint("pledge_id", "attempt", name="uq_charge_attempts_pledge_attempt"),
    )
    op.create_index(
        "ix_charge_attempts_in_doubt",
        "charge_attempts",
        ["pledge_id"],
        unique=False,
        postgresql_where=sa.text("status IN ('started', 'unknown')"),
    )
    op.create_index(
        op.f("ix_charge_attempts_payment_intent_id"), "charge_attempts", ["payment_intent_id"], unique=False
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("pledge_id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("stripe_refund_id", sa.String(length=255), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f("ck_refunds_status_known")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_refunds_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["pledge_id"], ["pledges.id"], name=op.f("fk_refunds_pledge_id_pledges")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("reference", name=op.f("uq_refunds_reference")),
    )
    op.create_index(op.f("ix_refunds_campaign_id"), "refunds", ["campaign_id"], unique=False)
    op.create_index(
        "ix_refunds_pending", "refunds", ["created_at"], unique=False, postgresql_where=sa.text("status = 'pending'")
    )
    op.create_index(op.f("ix_refunds_pledge_id"), "refunds", ["pledge_id"], unique=False)
    op.add_column("pledges", sa.Column("retry_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("pledges", sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("pledges", sa.Column("payment_job_requested_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_pledges_errored_retry_until",
        "pledges",
        ["retry_until"],
        unique=False,
        postgresql_where=sa.text("status = 'errored'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_pledges_errored_retry_until", table_name="pledges", postgresql_where=sa.text("status = 'errored'")
    )
    op.drop_column("pledges", "payment_job_requested_at")
    op.drop_column("pledges", "reminded_at")
    op.drop_column("pledges", "retry_until")
    op.drop_index(op.f("ix_refunds_pledge_id"), table_name="refunds")
    op.drop_index("ix_refunds_pending", table_name="refunds", postgresql_where=sa.text("status = 'pending'"))
    op.drop_index(op.f("ix_refunds_campaign_id"), table_name="refunds")
    op.drop_table("refunds")
    op.drop_index(op.f("ix_charge_attempts_payment_intent_id"), table_name="charge_attempts")
    op.drop_index(
        "ix_charge_attempts_in_doubt",
        table_name="charge_attempts",
        postgresql_where=sa.text("status IN ('started', 'unknown')"),
    )
    op.drop_table("charge_attempts")
    op.drop_table("charge_terms")
