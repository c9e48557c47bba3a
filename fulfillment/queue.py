"""The delivery queue: every waiting backer's place in line and estimated ship month, from the batch plan.

A pledge's `position` counts the packages still to ship up to its own (batches in order, earliest backers first within
a batch); its `estimated_ship_month` is its batch's planned ship date, never earlier than that of a batch before it
(batches are made in order). A batch without dates gives no estimate. A shipped pledge has left the queue; a pledge in
no batch has not joined it yet.

Two statements give the same answers at different costs:
- the whole queue (`delivery_queue`) reads each batch's waiting pledges in order as one array per batch, and numbers
  them in Python: the rows cross the wire as a few arrays, not one row per backer;
- a few places (`queue_places`, a pledge page, `GET /pledges/{id}`) rank the pledge within its own batch only, and add
  the packages of the batches before it as counts: every allocation of those batches counted from the index on
  `allocations.batch_id`, less those that left the queue (pledges no longer paid for, packages shipped), which are few
  beside them. Nothing is sorted but the pledge's own batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.pledges.lifecycle import SHIPPABLE_PLEDGE_STATUSES, PledgeStatus, in_sql


@dataclass(frozen=True, slots=True)
class QueuePlace:
    pledge_id: uuid.UUID
    position: int
    batch: int
    estimated_ship_month: str | None  # "YYYY-MM"


_SHIPPABLE = in_sql(SHIPPABLE_PLEDGE_STATUSES)
_NOT_SHIPPABLE = in_sql(frozenset(PledgeStatus) - SHIPPABLE_PLEDGE_STATUSES)

# Each batch of the campaign with its estimated ship month.
_PLAN = """
plan AS (
    SELECT b.id, b.number, b.status,
           CASE WHEN s.ship_on IS NOT NULL THEN to_char(
               max(s.ship_on) OVER (ORDER BY b.number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 'YYYY-MM'
           ) END AS month
    FROM batches b
    LEFT JOIN batch_schedules s ON s.campaign_id = b.campaign_id AND s.number = b.number
    WHERE b.campaign_id = :campaign_id
)"""

_WAITING = f"""
p.status IN ({_SHIPPABLE}) AND NOT EXISTS (SELECT FROM shipments s WHERE s.pledge_id = a.pledge_id)"""

WHOLE_QUEUE_SQL = f"""
WITH {_PLAN}
SELECT plan.number, plan.month, array_agg(a.pledge_id ORDER BY p.number, p.id) AS pledge_ids
FROM plan
JOIN allocations a ON a.batch_id = plan.id
JOIN pledges p ON p.id = a.pledge_id
WHERE {_WAITING}
GROUP BY plan.number, plan.month
ORDER BY plan.number
"""

_SOME_PLACES_SQL = f"""
WITH {_PLAN}, mine AS (
    SELECT DISTINCT plan.id, plan.number
    FROM allocations a JOIN plan ON plan.id = a.batch_id
    WHERE a.pledge_id = ANY(:pledge_ids) AND a.campaign_id = :campaign_id
), within AS (
    SELECT a.pledge_id, a.batch_id, row_number() OVER (PARTITION BY a.batch_id ORDER BY p.number, p.id) AS rank
    FROM allocations a JOIN pledges p ON p.id = a.pledge_id
    WHERE a.batch_id IN (SELECT id FROM mine) AND {_WAITING}
), earlier AS (
    SELECT id, number FROM plan WHERE number < (SELECT max(number) FROM mine)
), allocated AS (
    SELECT a.batch_id, count(*) AS packages
    FROM allocations a WHERE a.batch_id IN (SELECT id FROM earlier)
    GROUP BY a.batch_id
), gone AS (
    SELECT a.batch_id, count(*) AS packages
    FROM (
        SELECT a.batch_id FROM pledges p JOIN allocations a ON a.pledge_id = p.id
        WHERE p.campaign_id = :campaign_id AND p.status IN ({_NOT_SHIPPABLE})
        UNION ALL
        SELECT a.batch_id
        FROM shipments s JOIN allocations a ON a.pledge_id = s.pledge_id JOIN pledges p ON p.id = s.pledge_id
        WHERE s.campaign_id = :campaign_id AND p.status IN ({_SHIPPABLE})
    ) AS a
    WHERE a.batch_id IN (SELECT id FROM earlier)
    GROUP BY a.batch_id
), ahead AS (
    SELECT mine.id, coalesce(sum(coalesce(allocated.packages, 0) - coalesce(gone.packages, 0)), 0) AS packages
    FROM mine
    LEFT JOIN earlier ON earlier.number < mine.number
    LEFT JOIN allocated ON allocated.batch_id = earlier.id
    LEFT JOIN gone ON gone.batch_id = earlier.id
    GROUP BY mine.id
)
SELECT w.pledge_id, (ahead.packages + w.rank)::int AS position, plan.number AS batch, plan.month
FROM within w
JOIN plan ON plan.id = w.batch_id
JOIN ahead ON ahead.id = w.batch_id
WHERE w.pledge_id = ANY(:pledge_ids)
"""

_WHOLE_QUEUE = text(WHOLE_QUEUE_SQL).bindparams(bindparam("campaign_id", type_=Uuid()))
_SOME_PLACES = text(_SOME_PLACES_SQL).bindparams(
    bindparam("campaign_id", type_=Uuid()), bindparam("pledge_ids", type_=ARRAY(Uuid()))
)


async def delivery_queue(session: AsyncSession, campaign_id: uuid.UUID) -> list[QueuePlace]:
    """Every waiting pledge of the campaign in the order it ships."""
    rows = await session.execute(_WHOLE_QUEUE, {"campaign_id": campaign_id})
    queue: list[QueuePlace] = []
    position = 0
    for batch, month, pledge_ids in rows:
        queue.extend(QueuePlace(pledge_id, position + n, batch, month) for n, pledge_id in enumerate(pledge_ids, 1))
        position += len(pledge_ids)
    return queue


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
    f"""
    WITH {_PLAN}
    SELECT month FROM plan WHERE status = 'planned' ORDER BY number LIMIT 1
    """
).bindparams(bindparam("campaign_id", type_=Uuid()))


async def next_open_batch_month(session: AsyncSession, campaign_id: uuid.UUID) -> str | None:
    """The estimated ship month of the first batch not yet confirmed, the one a new pledge joins: what a buyer is
    shown before paying. None while it has no dates, or no batch is open."""
    month: str | None = await session.scalar(_NEXT_OPEN_MONTH, {"campaign_id": campaign_id})
    return month
