"""An account's language and time zone

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 02:55:00

- users.time_zone: the IANA zone the account's pages and mail show times in; UTC for every existing account.
- users.locale (the account's language) is one of en, zh_CN: anything else an older row holds becomes en first.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("time_zone", sa.String(length=64), server_default="UTC", nullable=False))
    op.execute("UPDATE users SET locale = 'en' WHERE locale NOT IN ('en', 'zh_CN')")
    op.create_check_constraint(op.f("ck_users_language"), "users", "locale IN ('en', 'zh_CN')")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_users_language"), "users", type_="check")
    op.drop_column("users", "time_zone")
