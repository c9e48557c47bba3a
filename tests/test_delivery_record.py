"""The public delivery record: a maker's and a space's funded campaigns, delivered on time, late (by how many
months), not yet (due or overdue) and never, computed from batches, tiers and campaign events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, CampaignEvent
from fulfillment.delivery_record import (
    DeliveryRecord,
    maker_delivery_record,
    space_campaign_deliveries,
    space_delivery_record,
)
from fulfillment.models import Batch
from tests.factories import insert_campaign, insert_space, insert_tier, insert_user


def month(now: datetime, offset: int) -> str:
    """'YYYY-MM' of the month `offset` months from `now`'s."""
    index = now.year * 12 + now.month - 1 + offset
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass
class Record:
    maker_id: uuid.UUID
    maker_name: str
    maker_email: str
    space_id: uuid.UUID
    space_slug: str
    campaigns: dict[str, Campaign]


async def _campaign(
    session: AsyncSession,
    maker_id: uuid.UUID,
    space_id: uuid.UUID,
    title: str,
    *,
    status: str,
    promised: list[str],
    batches: list[datetime | None],
) -> Campaign:
    """A campaign whose tiers promise `promised` months and whose batches shipped at the given times (None: confirmed,
    not shipped yet)."""
    campaign = await insert_campaign(session, maker_id=maker_id, space_id=space_id, status=status, title=title)
    for position, estimated in enumerate(promised):
        tier = await insert_tier(session, campaign, {"BOARD": 1}, title=f"Tier {position}")
        tier.estimated_delivery = estimated
    for number, shipped_at in enumerate(batches, start=1):
        session.add(
            Batch(
                campaign_id=campaign.id,
                number=number,
                status="shipped" if shipped_at else "confirmed",
                confirmed_at=shipped_at or datetime.now().astimezone(),
                shipped_at=shipped_at,
            )
        )
    await session.flush()
    return campaign


async def arrange_record(sessions: async_sessionmaker[AsyncSession]) -> Record:
    """One maker in one space: two campaigns delivered on time, one late by 2 months, one not yet due, one overdue by
    3 months, one suspended after funding; plus campaigns that were never funded, which the record leaves out."""
    async with sessions.begin() as session:
        now: datetime = await session.scalar(text("SELECT now()"))
        maker = await insert_user(session, "Ada Maker")
        space = await insert_space(session)

        async def made(title: str, *, status: str, promised: list[str], batches: list[datetime | None]) -> Campaign:
            return await _campaign(
                session, maker.id, space.id, title, status=status, promised=promised, batches=batches
            )

        campaigns = {
            "on_time": await made(
                "Ahead of time", status="fulfilled", promised=[month(now, 0), month(now, 1)], batches=[now, now]
            ),
            "on_time_this_month": await made(
                "Just in time", status="fulfilling", promised=[month(now, 0)], batches=[now]
            ),
            "late": await made("Two months late", status="fulfilled", promised=[month(now, -2)], batches=[now]),
            "not_yet_due": await made("Not yet due", status="fulfilling", promised=[month(now, 3)], batches=[None]),
            "overdue": await made(
                "Overdue", status="fulfilling", promised=[month(now, -4), month(now, -3)], batches=[now, None]
            ),
            "suspended": await made("Suspended", status="suspended", promised=[month(now, 2)], batches=[]),
            "live": await made("Still live", status="live", promised=[month(now, -5)], batches=[]),
            "suspended_live": await made("Stopped early", status="suspended", promised=[month(now, -5)], batches=[]),
        }
        session.add_all(
            [
                CampaignEvent(
                    campaign_id=campaigns["suspended"].id, action="suspend", from_status="funded", to_status="suspended"
                ),
                CampaignEvent(
                    campaign_id=campaigns["suspended_live"].id,
                    action="suspend",
                    from_status="live",
                    to_status="suspended",
                ),
            ]
        )
        elsewhere = await insert_space(session)
        await _campaign(
            session, maker.id, elsewhere.id, "Elsewhere", status="funded", promised=[month(now, -1)], batches=[]
        )
        return Record(maker.id, maker.name, maker.email, space.id, space.slug, campaigns)


SPACE_RECORD = DeliveryRecord(
    campaigns_funded=6,
    delivered_on_time=2,
    delivered_late=1,
    months_late=[2],
    not_yet_due=1,
    overdue=1,
    months_overdue=[3],
    never_delivered=1,
)
# The maker's record also holds their campaign in another space: funded, promised last month, nothing shipped.
MAKER_RECORD = DeliveryRecord(
    campaigns_funded=7,
    delivered_on_time=2,
    delivered_late=1,
    months_late=[2],
    not_yet_due=1,
    overdue=2,
    months_overdue=[1, 3],
    never_delivered=1,
)


async def test_the_record_counts_each_funded_campaign_once_by_how_it_was_delivered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    arranged = await arrange_record(sessions)
    async with sessions.begin() as session:
        assert await space_delivery_record(session, arranged.space_id) == SPACE_RECORD
        assert await maker_delivery_record(session, arranged.maker_id) == MAKER_RECORD
        outcomes = await space_campaign_deliveries(session, arranged.space_id)
    by_name = {name: outcomes.get(campaign.id) for name, campaign in arranged.campaigns.items()}
    assert {name: (o.outcome, o.months) if o else None for name, o in by_name.items()} == {
        "on_time": ("on_time", 0),
        "on_time_this_month": ("on_time", 0),
        "late": ("late", 2),
        "not_yet_due": ("not_yet_due", 0),
        "overdue": ("overdue", 3),
        "suspended": ("never", 0),
        "live": None,
        "suspended_live": None,
    }


async def test_a_maker_and_a_space_with_nothing_funded_have_an_empty_record(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        maker = await insert_user(session, "New Maker")
        space = await insert_space(session)
        assert await maker_delivery_record(session, maker.id) == DeliveryRecord()
        assert await space_delivery_record(session, space.id) == DeliveryRecord()
