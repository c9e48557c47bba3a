"""The campaign page shows its maker's and its space's delivery record: announce the changes that move it

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 03:45:00

The record (fulfillment/delivery_record.py) of a campaign's maker and space is read from their other campaigns: their
status, their batches and their tiers' promised month. 0007 announces a change only for the campaign it touches; these
triggers also name every campaign of the same maker or the same space, so the kept page (service/page_cache.py) of
each of them is forgotten. Only what the record reads fires them: a status that changes, a batch added, removed,
shipped, and a tier's promised month (not its remaining count, which moves with every pledge).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "kindling_campaign_changed"

FUNCTIONS = (
    f"""
CREATE FUNCTION delivery_record_siblings_changed(changed uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', sibling.id::text)
    FROM campaigns AS changed_campaign
    JOIN campaigns AS sibling
      ON sibling.maker_id = changed_campaign.maker_id OR sibling.space_id = changed_campaign.space_id
    WHERE changed_campaign.id = changed;
END;
$$;
""",
    """
CREATE FUNCTION campaign_delivery_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM delivery_record_siblings_changed(NEW.id);
    RETURN NULL;
END;
$$;
""",
    """
CREATE FUNCTION campaign_part_delivery_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM delivery_record_siblings_changed(OLD.campaign_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM delivery_record_siblings_changed(NEW.campaign_id);
    END IF;
    RETURN NULL;
END;
$$;
""",
)

TRIGGERS = (
    "CREATE TRIGGER campaigns_delivery_notice AFTER UPDATE OF status ON campaigns "
    "FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION campaign_delivery_changed()",
    "CREATE TRIGGER batches_delivery_notice AFTER INSERT OR DELETE OR UPDATE OF status, shipped_at ON batches "
    "FOR EACH ROW EXECUTE FUNCTION campaign_part_delivery_changed()",
    "CREATE TRIGGER tiers_delivery_notice AFTER UPDATE OF estimated_delivery ON tiers "
    "FOR EACH ROW WHEN (OLD.estimated_delivery IS DISTINCT FROM NEW.estimated_delivery) "
    "EXECUTE FUNCTION campaign_part_delivery_changed()",
    # TRUNCATE fires no row trigger: one notice for everything, as 0007 does for the tables it watches.
    "CREATE TRIGGER batches_truncate_notice AFTER TRUNCATE ON batches "
    "FOR EACH STATEMENT EXECUTE FUNCTION many_campaigns_changed()",
)


def upgrade() -> None:
    for statement in (*FUNCTIONS, *TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER batches_truncate_notice ON batches")
    op.execute("DROP TRIGGER tiers_delivery_notice ON tiers")
    op.execute("DROP TRIGGER batches_delivery_notice ON batches")
    op.execute("DROP TRIGGER campaigns_delivery_notice ON campaigns")
    op.execute("DROP FUNCTION campaign_part_delivery_changed()")
    op.execute("DROP FUNCTION campaign_delivery_changed()")
    op.execute("DROP FUNCTION delivery_record_siblings_changed(uuid)")
