"""Texts say their language: makers' texts and operators' notes, and the maker's versions in the other language

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 03:00:00

- campaigns, tiers, products, campaign_updates, reviews, campaign_events: `language` (en or zh_CN), what the row's
  texts are written in (a campaign event's: its note, such as a suspension's reason). Existing rows: en.
- campaigns.translations and campaign_updates.translations: the maker's versions in the other language, by language.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("campaigns", "tiers", "products", "campaign_updates", "reviews", "campaign_events")
TRANSLATED = ("campaigns", "campaign_updates")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("language", sa.String(length=10), server_default="en", nullable=False))
        op.create_check_constraint(op.f(f"ck_{table}_language_known"), table, "language IN ('en', 'zh_CN')")
    for table in TRANSLATED:
        op.add_column(
            table,
            sa.Column("translations", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        )


def downgrade() -> None:
    for table in TRANSLATED:
        op.drop_column(table, "translations")
    for table in TABLES:
        op.drop_constraint(op.f(f"ck_{table}_language_known"), table, type_="check")
        op.drop_column(table, "language")
