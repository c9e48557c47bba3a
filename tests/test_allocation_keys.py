"""An allocation is of its batch's campaign: one foreign key holds the batch and its campaign together (migration
0032_fulfill5s), which also spares the planner one check per allocation it writes."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign
from fulfillment.models import Allocation, Batch
from tests.test_fulfillment_service import add_pledges, arrange, plan


async def test_an_allocation_names_its_batchs_campaign_and_goes_with_its_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ours, other = await arrange(sessions), await arrange(sessions)
    pledges = await add_pledges(sessions, ours, 3)
    await plan(sessions, ours.campaign_id)

    # Moved to another campaign while its batch stays ours: refused, nothing changes.
    with pytest.raises(IntegrityError, match="fk_allocations_batch_id_batches"):
        async with sessions.begin() as session:
            await session.execute(
                update(Allocation).where(Allocation.pledge_id == pledges[0]).values(campaign_id=other.campaign_id)
            )
    async with sessions() as session:
        campaigns = set(await session.scalars(select(Allocation.campaign_id).where(Allocation.pledge_id.in_(pledges))))
        assert campaigns == {ours.campaign_id}
        assert await session.get(Campaign, other.campaign_id) is not None

    # An unconfirmed batch dropped takes its allocations with it, as before.
    async with sessions.begin() as session:
        await session.execute(delete(Batch).where(Batch.campaign_id == ours.campaign_id))
    async with sessions() as session:
        left = await session.scalars(select(Allocation.pledge_id).where(Allocation.pledge_id.in_(pledges)))
        assert list(left) == []
