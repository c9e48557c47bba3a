"""A pledge's add-on line names its add-on

Revision ID: 0020_pledge_extras
Revises: 0019
Create Date: 2026-12-07 06:20:00

- pledge_items.add_on_id: the add-on an `addon` line was chosen as (its `ref_id` is the add-on's product, which two
  add-ons may share), so cancelling, expiring or changing the pledge gives back that add-on's units. Null on every
  other line, and when the maker deletes the add-on (possible only while the campaign is a draft, which has no
  pledges).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0020_pledge_extras"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("pledge_items", sa.Column("add_on_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_pledge_items_add_on_id_add_ons"), "pledge_items", "add_ons", ["add_on_id"], ["id"], ondelete="SET NULL"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_pledge_items_add_on_id_add_ons"), "pledge_items", type_="foreignkey")
    op.drop_column("pledge_items", "add_on_id")
