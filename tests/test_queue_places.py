"""One backer's place in the delivery queue, counted without numbering the whole campaign, agrees with the whole
queue: across batches, with packages ahead already shipped and pledges ahead refunded after the plan."""

from __future__ import annotations

from datetime import date

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from fulfillment.models import BatchSchedule, Shipment
from fulfillment.queue import delivery_queue, queue_place, queue_places
from fulfillment.service import plan_campaign
from tests.factories import insert_campaign, insert_pledges, insert_product, insert_tier


async def test_a_backers_place_counts_only_the_packages_still_to_ship_ahead_of_it_in_every_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        campaign = await insert_campaign(session)
        await insert_product(session, campaign, "BOARD", batch_size=3)
        tier = await insert_tier(session, campaign, {"BOARD": 1})
        ids = await insert_pledges(session, campaign, tier, 10)
    async with sessions.begin() as session:
        await plan_campaign(session, campaign.id)  # batches of three: 0-2, 3-5, 6-8, 9
    async with sessions.begin() as session:
        await session.execute(update(Pledge).where(Pledge.id.in_([ids[1], ids[4]])).values(status="refunded"))
        await session.execute(
            insert(Shipment),
            [
                {"pledge_id": ids[n], "campaign_id": campaign.id, "carrier": "SF", "tracking_number": f"SF{n}"}
                for n in (2, 4, 7)
            ],
        )
        # Batch 3 is planned to ship before batch 2: it cannot, so it shows batch 2's month; batch 4 has no dates.
        await session.execute(
            insert(BatchSchedule),
            [
                {"campaign_id": campaign.id, "number": number, "production_on": ship_on, "ship_on": ship_on,
                 "announced_ship_on": ship_on}
                for number, ship_on in ((2, date(2027, 5, 10)), (3, date(2027, 4, 1)))
            ],
        )  # fmt: skip

    async with sessions() as session:
        whole = await delivery_queue(session, campaign.id)
        some = await queue_places(session, campaign.id, ids)
        one_by_one = [await queue_place(session, campaign.id, pledge_id) for pledge_id in ids]

    waiting = [0, 3, 5, 6, 8, 9]
    assert [place.pledge_id for place in whole] == [ids[n] for n in waiting]
    assert [(place.position, place.batch, place.estimated_ship_month) for place in whole] == [
        (1, 1, None),
        (2, 2, "2027-05"),
        (3, 2, "2027-05"),
        (4, 3, "2027-05"),
        (5, 3, "2027-05"),
        (6, 4, None),
    ]
    assert some == {place.pledge_id: place for place in whole}
    assert one_by_one == [some.get(pledge_id) for pledge_id in ids]
    assert [n for n, place in enumerate(one_by_one) if place is None] == [1, 2, 4, 7]
