"""Tiers and products take the maker's version of their texts in the other language, as campaigns and updates do

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 06:30:00

- tiers.translations: {"zh_CN": {"title": ..., "description": ...}}; products.translations: {"zh_CN": {"name": ...}}.
  Existing rows: none given ({}).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("tiers", "products")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("translations", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "translations")
