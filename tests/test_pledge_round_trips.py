"""A pledge's add-ons cost the reservation no round trip of their own: they are looked up with the tier, in its query,
so that a launch rush of a tier plus an add-on asks the database as often as a plain one (bench/launch_rush.py)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.errors import InvalidInput
from campaigns.models import User
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import AddOnChoice, PledgeChoice
from campaigns.pledges.service import create_pledge
from tests.extras_helpers import lamp_campaign
from tests.helpers import many_backers


async def test_a_pledge_with_add_ons_asks_the_database_as_often_as_one_without(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    lamp = await lamp_campaign(stripe_client, sessions, cable_limit=5)
    backers = await many_backers(sessions, 3)
    black = {lamp.lamp: {"colour": "black"}}
    plain = PledgeChoice(lamp.lamp_tier, 0, "CN", variants=black)
    # The poster (no options, ships alone) and the limited cable (only with the lamp tier): both still checked.
    extras = PledgeChoice(
        lamp.lamp_tier, 0, "CN", variants=black, add_ons=(AddOnChoice(lamp.poster, 2), AddOnChoice(lamp.cable, 1))
    )
    statements: list[str] = []

    def note(connection: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    asked: list[int] = []
    pledged: list[uuid.UUID] = []
    for backer, choice in zip(backers, (plain, extras), strict=False):
        async with sessions.begin() as session:
            user = await session.get_one(User, uuid.UUID(backer.id))
            event.listen(engine.sync_engine, "before_cursor_execute", note)
            try:
                pledge = await create_pledge(session, campaign_id=lamp.id, backer=user, choice=choice)
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", note)
            pledged.append(pledge.id)
        asked.append(len(statements))
        statements.clear()

    assert asked[0] == asked[1] > 0
    async with sessions.begin() as session:
        lines = (
            await session.execute(
                select(PledgeItem.kind, PledgeItem.sku, PledgeItem.quantity)
                .where(PledgeItem.pledge_id == pledged[1], PledgeItem.add_on_id.is_not(None))
                .order_by(PledgeItem.position)
            )
        ).all()
    assert [tuple(line) for line in lines] == [("addon", "POSTER", 2), ("addon", "CABLE", 1)]

    # An add-on of another campaign is still refused naming its field, and nothing is taken.
    other = await lamp_campaign(stripe_client, sessions)
    foreign = PledgeChoice(lamp.lamp_tier, 0, "CN", variants=black, add_ons=(AddOnChoice(other.poster, 1),))
    async with sessions.begin() as session:
        user = await session.get_one(User, uuid.UUID(backers[2].id))
        with pytest.raises(InvalidInput) as refused:
            await create_pledge(session, campaign_id=lamp.id, backer=user, choice=foreign)
    assert [error.field for error in refused.value.errors] == ["add_ons.0.add_on_id"]
