"""The design log: an append-only Merkle tree of the files makers submit (RFC 9162)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 03:40:00

- design_log: one row holding the log's size; appending takes its row lock, so leaf indices are gapless.
- design_records: one leaf per file (its SHA-256, name, size, kind, maker, campaign, time, leaf hash).
- design_log_nodes: the hash of every complete subtree, written once when it fills, so proofs need O(log n) reads.
PostgreSQL refuses UPDATE and DELETE on the records and the nodes; TRUNCATE still works (row triggers do not fire on it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One statement per string: asyncpg prepares each.
APPEND_ONLY = (
    """
CREATE FUNCTION design_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the design log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;
""",
    """
CREATE TRIGGER design_records_append_only
    BEFORE UPDATE OR DELETE ON design_records
    FOR EACH ROW EXECUTE FUNCTION design_log_is_append_only();
""",
    """
CREATE TRIGGER design_log_nodes_append_only
    BEFORE UPDATE OR DELETE ON design_log_nodes
    FOR EACH ROW EXECUTE FUNCTION design_log_is_append_only();
""",
)

KINDS = "'bom', 'factory_quote', 'certification_plan', 'prototype_photo', 'cad', 'schematic', 'firmware', 'other'"


def upgrade() -> None:
    op.create_table(
        "design_log",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_design_log_one_row")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_design_log_size_natural")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_design_log")),
    )
    op.create_table(
        "design_records",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("maker_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.CheckConstraint("id >= 0", name=op.f("ck_design_records_index_natural")),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_design_records_size_natural")),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_design_records_known_kind")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_design_records_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(["maker_id"], ["users.id"], name=op.f("fk_design_records_maker_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_design_records")),
    )
    op.create_index(op.f("ix_design_records_campaign_id"), "design_records", ["campaign_id"], unique=False)
    op.create_table(
        "design_log_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "position", name=op.f("pk_design_log_nodes")),
    )
    for statement in APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER design_log_nodes_append_only ON design_log_nodes")
    op.execute("DROP TRIGGER design_records_append_only ON design_records")
    op.execute("DROP FUNCTION design_log_is_append_only()")
    op.drop_table("design_log_nodes")
    op.drop_index(op.f("ix_design_records_campaign_id"), table_name="design_records")
    op.drop_table("design_records")
    op.drop_table("design_log")
