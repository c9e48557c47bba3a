"""Every change to what the public campaign page shows is announced on the channel kindling_campaign_changed

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 18:00:00

The payload is the campaign's id, or '*' when the change may touch many campaigns (a space, TRUNCATE). The app keeps
the page as anonymous visitors see it (service/page_cache.py) and forgets it on the notice. One notice per row: NOTIFY
sends identical payloads of one transaction once, at commit, and nothing for a transaction that rolls back.

| table            | the campaign it names                   |
|------------------|-----------------------------------------|
| campaigns        | id                                      |
| tiers, products, pledges, campaign_images, campaign_updates, reviews | campaign_id |
| spaces           | '*' (a space's name, city, fee appear on each of its campaigns) |
| users            | each campaign of a maker whose name changed |
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "kindling_campaign_changed"
BY_CAMPAIGN_ID = ("tiers", "products", "pledges", "campaign_images", "campaign_updates", "reviews")
EVERY_TABLE = ("campaigns", *BY_CAMPAIGN_ID, "spaces", "users")

# Autogenerate cannot see these; tests/test_page_cache.py proves they work. One statement per string: asyncpg prepares
# each.
FUNCTIONS = (
    f"""
CREATE FUNCTION campaign_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('{CHANNEL}', OLD.id::text);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('{CHANNEL}', NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$;
""",
    f"""
CREATE FUNCTION campaign_part_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('{CHANNEL}', OLD.campaign_id::text);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('{CHANNEL}', NEW.campaign_id::text);
    END IF;
    RETURN NULL;
END;
$$;
""",
    f"""
CREATE FUNCTION many_campaigns_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '*');
    RETURN NULL;
END;
$$;
""",
    f"""
CREATE FUNCTION maker_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', campaigns.id::text) FROM campaigns WHERE campaigns.maker_id = NEW.id;
    RETURN NULL;
END;
$$;
""",
)

TRIGGERS = (
    "CREATE TRIGGER campaigns_change_notice AFTER INSERT OR UPDATE OR DELETE ON campaigns "
    "FOR EACH ROW EXECUTE FUNCTION campaign_row_changed()",
    *(
        f"CREATE TRIGGER {table}_change_notice AFTER INSERT OR UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION campaign_part_changed()"
        for table in BY_CAMPAIGN_ID
    ),
    "CREATE TRIGGER spaces_change_notice AFTER INSERT OR UPDATE OR DELETE ON spaces "
    "FOR EACH ROW EXECUTE FUNCTION many_campaigns_changed()",
    "CREATE TRIGGER users_change_notice AFTER UPDATE OF name ON users "
    "FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION maker_renamed()",
    # TRUNCATE fires no row trigger (the test suite empties the tables with it): one notice for everything.
    *(
        f"CREATE TRIGGER {table}_truncate_notice AFTER TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION many_campaigns_changed()"
        for table in EVERY_TABLE
    ),
)


def upgrade() -> None:
    for statement in (*FUNCTIONS, *TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    for table in EVERY_TABLE:
        op.execute(f"DROP TRIGGER {table}_truncate_notice ON {table}")
        op.execute(f"DROP TRIGGER {table}_change_notice ON {table}")
    for name in ("maker_renamed", "many_campaigns_changed", "campaign_part_changed", "campaign_row_changed"):
        op.execute(f"DROP FUNCTION {name}()")
