"""Accounts for those who hold money: the audit log (append-only), two-factor, and the address an open hold came from

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 23:55:00

- audit_log: one row per operator or admin action; PostgreSQL refuses UPDATE and DELETE, like the ledger (0003).
  TRUNCATE still works (the test suite empties every table between tests with it): row triggers do not fire on it.
- users.totp_secret, two_factor_enabled_at, totp_last_step and recovery_codes: TOTP two-factor.
- pledges.client_address and hold_slot, unique together over the pledges waiting for a card: one address holds at most
  KINDLING_MAX_OPEN_HOLDS of them, each in one of its numbered slots.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Autogenerate cannot see these; tests/test_audit.py proves they work. One statement per string: asyncpg prepares each.
APPEND_ONLY = (
    """
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP USING ERRCODE = 'restrict_violation';
END;
$$;
""",
    """
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
""",
)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=80), nullable=False),
        sa.Column("space_id", sa.Uuid(), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_audit_log_actor_id_users")),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.id"], name=op.f("fk_audit_log_space_id_spaces")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_actor_id"), "audit_log", ["actor_id"], unique=False)
    op.create_index("ix_audit_log_created", "audit_log", ["created_at", "id"], unique=False)
    op.create_index("ix_audit_log_space_created", "audit_log", ["space_id", "created_at", "id"], unique=False)
    for statement in APPEND_ONLY:
        op.execute(statement)

    op.add_column("users", sa.Column("totp_secret", sa.String(length=64), nullable=True))
    op.add_column("users", sa.Column("two_factor_enabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recovery_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index(op.f("ix_recovery_codes_user_id"), "recovery_codes", ["user_id"], unique=False)

    op.add_column("pledges", sa.Column("client_address", sa.String(length=64), nullable=True))
    op.add_column("pledges", sa.Column("hold_slot", sa.SmallInteger(), nullable=True))
    op.create_index(
        "uq_pledges_open_hold_slot",
        "pledges",
        ["client_address", "hold_slot"],
        unique=True,
        postgresql_where=sa.text("status = 'requires_payment_method' AND hold_slot IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_pledges_open_hold_slot", table_name="pledges")
    op.drop_column("pledges", "hold_slot")
    op.drop_column("pledges", "client_address")
    op.drop_index(op.f("ix_recovery_codes_user_id"), table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_column("users", "totp_last_step")
    op.drop_column("users", "two_factor_enabled_at")
    op.drop_column("users", "totp_secret")
    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION audit_log_is_append_only()")
    op.drop_index("ix_audit_log_space_created", table_name="audit_log")
    op.drop_index("ix_audit_log_created", table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_actor_id"), table_name="audit_log")
    op.drop_table("audit_log")
