"""The delivery queue: every waiting backer's place in line and estimated ship month, from the batch plan.

One statement, window functions over the campaign's allocations: a pledge's `position` counts the packages still to
ship ahead of it (batches in order, earliest backers first within a batch), its `estimated_ship_month` is its batch's
planned ship date, never earlier than that of a batch before it (batches are made in order). A batch without dates
gives no estimate. A shipped pledge has left the queue; a pledge in no batch has not joined it yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.pledges.lifecycle import SHIPPABLE_PLEDGE_STATUSES, in_sql


@dataclass(frozen=True, slots=True)
class QueuePlace:
    pledge_id: uuid.UUID
    position: int
    batch: int
    estimated_ship_month: str | None  # "YYYY-MM"


_QUEUE = f"""
WITH plan AS (
    SELECT b.number, s.ship_on,
           max(s.ship_on) OVER (ORDER BY b.number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS not_before
    FROM batches b
    LEFT JOIN batch_schedules s ON s.campaign_id = b.campaign_id AND s.number = b.number
    WHERE b.campaign_id = :campaign_id
), waiting AS (
    SELECT a.pledge_id, b.number AS batch,
           row_number() OVER (ORDER BY b.number, p.number, p.id) AS position
    FROM allocations a
    JOIN batches b ON b.id = a.batch_id
    JOIN pledges p ON p.id = a.pledge_id
    WHERE a.campaign_id = :campaign_id
      AND p.status IN ({in_sql(SHIPPABLE_PLEDGE_STATUSES)})
      AND NOT EXISTS (SELECT FROM shipments s WHERE s.pledge_id = a.pledge_id)
)
SELECT w.pledge_id, w.position, w.batch,
       CASE WHEN plan.ship_on IS NOT NULL THEN to_char(plan.not_before, 'YYYY-MM') END AS estimated_ship_month
FROM waiting w
JOIN plan ON plan.number = w.batch
"""

_WHOLE_QUEUE = text(_QUEUE + "ORDER BY w.position").bindparams(bindparam("campaign_id", type_=Uuid()))
_SOME_PLACES = text(_QUEUE + "WHERE w.pledge_id = ANY(:pledge_ids)").bindparams(
    bindparam("campaign_id", type_=Uuid()), bindparam("pledge_ids", type_=ARRAY(Uuid()))
)


async def delivery_queue(session: AsyncSession, campaign_id: uuid.UUID) -> list[QueuePlace]:
    """Every waiting pledge of the campaign in the order it ships."""
    rows = await session.execute(_WHOLE_QUEUE, {"campaign_id": campaign_id})
    return [QueuePlace(*row) for row in rows]


async def queue_places(
    session: AsyncSession, campaign_id: uuid.UUID, pledge_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, QueuePlace]:
    """The places of some pledges of one campaign; a pledge not waiting in its queue is absent."""
    if not pledge_ids:
        return {}
    rows = await session.execute(_SOME_PLACES, {"campaign_id": campaign_id, "pledge_ids": list(pledge_ids)})
    return {row.pledge_id: QueuePlace(*row) for row in rows}


async def queue_place(session: AsyncSession, campaign_id: uuid.UUID, pledge_id: uuid.UUID) -> QueuePlace | None:
    return (await queue_places(session, campaign_id, [pledge_id])).get(pledge_id)


async def places_of(
    session: AsyncSession, pledges: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> dict[uuid.UUID, QueuePlace]:
    """The places of pledges given as (pledge id, campaign id), from any campaigns: one query per campaign."""
    by_campaign: dict[uuid.UUID, list[uuid.UUID]] = {}
    for pledge_id, campaign_id in pledges:
        by_campaign.setdefault(campaign_id, []).append(pledge_id)
    found: dict[uuid.UUID, QueuePlace] = {}
    for campaign_id, pledge_ids in by_campaign.items():
        found |= await queue_places(session, campaign_id, pledge_ids)
    return found


_NEXT_OPEN_MONTH = text(
    """
    WITH plan AS (
        SELECT b.number, b.status, s.ship_on,
               max(s.ship_on) OVER (ORDER BY b.number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS not_before
        FROM batches b
        LEFT JOIN batch_schedules s ON s.campaign_id = b.campaign_id AND s.number = b.number
        WHERE b.campaign_id = :campaign_id
    )
    SELECT CASE WHEN ship_on IS NOT NULL THEN to_char(not_before, 'YYYY-MM') END
    FROM plan WHERE status = 'planned' ORDER BY number LIMIT 1
    """
).bindparams(bindparam("campaign_id", type_=Uuid()))


async def next_open_batch_month(session: AsyncSession, campaign_id: uuid.UUID) -> str | None:
    """The estimated ship month of the first batch not yet confirmed, the one a new pledge joins: what a buyer is
    shown before paying. None while it has no dates, or no batch is open."""
    month: str | None = await session.scalar(_NEXT_OPEN_MONTH, {"campaign_id": campaign_id})
    return month
