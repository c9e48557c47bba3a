"""A pledge that ends gives back its units before its tier slot: the order the reservation takes them in (the units'
CTEs before the slot, in one statement). In the other order, a launch rush with add-ons deadlocked against the undoing
of pledges whose card set-up was given up (the benchmark's 500s)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import AddOn, Tier
from campaigns.pledges.service import expire_unconfirmed_pledges, give_back_unconfirmed_pledge
from tests.extras_helpers import LampCampaign, lamp_campaign, units_left
from tests.helpers import many_backers

WAIT_LIMIT_SECONDS = 60


async def tier_free_while_units_wait(
    engine: AsyncEngine, lamp: LampCampaign, undo: Callable[[], Awaitable[object]]
) -> bool:
    """Run `undo` while another transaction holds the cable add-on's row; once `undo` waits for that row, whether the
    tier's row is still free (nothing locked it before the units)."""
    async with engine.begin() as holder:
        await holder.execute(select(AddOn.id).where(AddOn.id == uuid.UUID(lamp.cable)).with_for_update())
        undoing = asyncio.create_task(undo())
        async with engine.connect() as watcher:
            began = time.monotonic()
            while not await watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'UPDATE add_ons%'"
                )
            ):
                assert time.monotonic() - began < WAIT_LIMIT_SECONDS, "the undoing never reached the add-on"
                assert not undoing.done(), undoing
                await watcher.rollback()  # pg_stat_activity is read once per transaction
                await asyncio.sleep(0.02)
        async with engine.connect() as probe:
            try:
                await probe.execute(
                    select(Tier.id).where(Tier.id == uuid.UUID(lamp.lamp_tier)).with_for_update(nowait=True)
                )
                free = True
            except DBAPIError:
                free = False
            await probe.rollback()
    await undoing
    return free


async def test_an_ended_pledge_frees_its_add_on_units_before_its_tier_slot_as_the_reservation_takes_them(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    lamp = await lamp_campaign(stripe_client, sessions, cable_limit=5, tier_limit=10)
    first, second = await many_backers(sessions, 2)
    given_up = await stripe_client.post(lamp.pledges_url(), json=lamp.body(cables=1), headers=first.headers)
    assert given_up.status_code == 201, given_up.text
    assert await units_left(sessions, lamp) == {"black": None, "cable": 4, "tier": 9}

    async def give_back() -> None:
        async with sessions.begin() as session:
            await give_back_unconfirmed_pledge(session, uuid.UUID(given_up.json()["id"]))

    assert await tier_free_while_units_wait(engine, lamp, give_back)
    assert await units_left(sessions, lamp) == {"black": None, "cable": 5, "tier": 10}

    # The sweep's expiry of pledges whose card never came, likewise.
    expiring = await stripe_client.post(lamp.pledges_url(), json=lamp.body(cables=2), headers=second.headers)
    assert expiring.status_code == 201, expiring.text

    async def expire() -> int:
        async with sessions.begin() as session:
            return await expire_unconfirmed_pledges(session, hold_seconds=0)

    assert await tier_free_while_units_wait(engine, lamp, expire)
    assert await units_left(sessions, lamp) == {"black": None, "cable": 5, "tier": 10}
