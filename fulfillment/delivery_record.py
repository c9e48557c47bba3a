"""A maker's and a makerspace's public delivery record, computed from the database alone: nobody types it.

The words, exactly:

- A campaign is **funded** once its pledges were collected: its status is `funded`, `fulfilling` or `fulfilled`, or it
  was suspended from one of those (a `suspend` event whose `from_status` is one of them).
- Its **promise** is the end of the latest delivery month its tiers announce (`Tier.estimated_delivery`, "YYYY-MM").
- It is **delivered** when it has at least one manufacturing batch and every one of its batches has shipped; the
  delivery date is the day its last batch shipped. Delivered **on time** means by the end of the promised month;
  otherwise it is **late** by the number of calendar months between the promised month and the month it shipped.
- **Not yet**: funded, not suspended, and not delivered. It is **overdue** by the number of calendar months since the
  promised month once that month has ended, else **not yet due**.
- **Never**: suspended after it was funded; its backers were refunded what the escrow still held.

Each record is one SQL statement (one row per outcome and month count); months are counted in UTC.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Outcome = Literal["on_time", "late", "not_yet_due", "overdue", "never"]

FUNDED_STATUSES = ("funded", "fulfilling", "fulfilled")

# One row per funded campaign of the maker or the space: its outcome and, for late and overdue, by how many months.
# MATERIALIZED: each campaign's tiers and batches are read once, not once per reference to `promised`/`delivered_at`.
_OUTCOMES = """
WITH funded AS MATERIALIZED (
    SELECT c.id, c.status = 'suspended' AS suspended,
           (SELECT max(t.estimated_delivery) FROM tiers t WHERE t.campaign_id = c.id) AS promised,
           (SELECT CASE WHEN count(*) > 0 AND bool_and(b.status = 'shipped') THEN max(b.shipped_at) END
              FROM batches b WHERE b.campaign_id = c.id) AS delivered_at
    FROM campaigns c
    WHERE c.{owner} = :owner_id
      AND (c.status IN ('funded', 'fulfilling', 'fulfilled')
           OR (c.status = 'suspended' AND EXISTS (
                SELECT 1 FROM campaign_events e
                WHERE e.campaign_id = c.id AND e.action = 'suspend'
                  AND e.from_status IN ('funded', 'fulfilling', 'fulfilled'))))
), months AS (
    SELECT funded.*,
           CAST(substr(promised, 1, 4) AS int) * 12 + CAST(substr(promised, 6, 2) AS int) AS promised_month,
           CAST(extract(year FROM coalesce(delivered_at, now()) AT TIME ZONE 'UTC') AS int) * 12
             + CAST(extract(month FROM coalesce(delivered_at, now()) AT TIME ZONE 'UTC') AS int) AS reached_month
    FROM funded
), outcomes AS (
    SELECT id,
           CASE
               WHEN suspended THEN 'never'
               WHEN delivered_at IS NOT NULL AND (promised IS NULL OR reached_month <= promised_month) THEN 'on_time'
               WHEN delivered_at IS NOT NULL THEN 'late'
               WHEN promised IS NULL OR reached_month <= promised_month THEN 'not_yet_due'
               ELSE 'overdue'
           END AS outcome,
           CASE
               WHEN NOT suspended AND promised IS NOT NULL AND reached_month > promised_month
               THEN reached_month - promised_month ELSE 0
           END AS months
    FROM months
)
"""

_RECORD = _OUTCOMES + "SELECT outcome, months, count(*) AS campaigns FROM outcomes GROUP BY outcome, months"
_OWNERS = ("maker_id", "space_id")


@dataclass(frozen=True)
class DeliveryRecord:
    """How many funded campaigns ended in each outcome; `months_late` and `months_overdue` hold one entry per late or
    overdue campaign (by how many months), smallest first."""

    campaigns_funded: int = 0
    delivered_on_time: int = 0
    delivered_late: int = 0
    months_late: list[int] = field(default_factory=list)
    not_yet_due: int = 0
    overdue: int = 0
    months_overdue: list[int] = field(default_factory=list)
    never_delivered: int = 0


def record_from_outcomes(rows: list[tuple[str, int, int]]) -> DeliveryRecord:
    """(outcome, months, campaigns) rows, as the query groups them, into a record."""
    counts: Counter[str] = Counter()
    late: list[int] = []
    overdue: list[int] = []
    for outcome, months, campaigns in rows:
        counts[outcome] += campaigns
        if outcome == "late":
            late += [months] * campaigns
        elif outcome == "overdue":
            overdue += [months] * campaigns
    return DeliveryRecord(
        campaigns_funded=sum(counts.values()),
        delivered_on_time=counts["on_time"],
        delivered_late=counts["late"],
        months_late=sorted(late),
        not_yet_due=counts["not_yet_due"],
        overdue=counts["overdue"],
        months_overdue=sorted(overdue),
        never_delivered=counts["never"],
    )


async def _record(session: AsyncSession, owner: str, owner_id: uuid.UUID) -> DeliveryRecord:
    assert owner in _OWNERS
    query = text(_RECORD.format(owner=owner))
    rows = (await session.execute(query, {"owner_id": owner_id})).all()
    return record_from_outcomes([(outcome, months, campaigns) for outcome, months, campaigns in rows])


async def maker_delivery_record(session: AsyncSession, maker_id: uuid.UUID) -> DeliveryRecord:
    return await _record(session, "maker_id", maker_id)


async def space_delivery_record(session: AsyncSession, space_id: uuid.UUID) -> DeliveryRecord:
    return await _record(session, "space_id", space_id)


@dataclass(frozen=True)
class CampaignDelivery:
    campaign_id: uuid.UUID
    outcome: Outcome
    months: int


async def space_campaign_deliveries(session: AsyncSession, space_id: uuid.UUID) -> dict[uuid.UUID, CampaignDelivery]:
    """Each funded campaign of the space with its outcome, by campaign id (one statement)."""
    query = text(_OUTCOMES.format(owner="space_id") + "SELECT id, outcome, months FROM outcomes")
    rows = (await session.execute(query, {"owner_id": space_id})).all()
    return {campaign_id: CampaignDelivery(campaign_id, outcome, months) for campaign_id, outcome, months in rows}


def clock_changes_record_at(record: DeliveryRecord, now: datetime) -> datetime | None:
    """When the clock alone next changes `record`: at the start of the next UTC month while a campaign waits to be
    delivered (not yet due becomes overdue, overdue grows by a month); never once every funded campaign has ended."""
    if not record.not_yet_due and not record.overdue:
        return None
    moment = now.astimezone(UTC)
    next_index = moment.year * 12 + moment.month  # the month after, counted from year 0 month 1 = 0
    return datetime(next_index // 12, next_index % 12 + 1, 1, tzinfo=UTC)
