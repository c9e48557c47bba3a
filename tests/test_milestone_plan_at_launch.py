"""The milestone plan a campaign launched with is the one it keeps: a space's new plan is for campaigns launched
after it."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payments.gateway import StripeGateway
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import CARD_OK, Actor, launched_campaign
from tests.money_helpers import back_campaign, pass_deadline, run_jobs, stripe_work, sweep
from tests.pages import logged_in

PAIR = 34_900 + 1_000  # the "Pair" tier shipped to CN
NEW_PLAN = {
    "milestones": [
        {"name": "Tooling paid", "share_bps": 2000, "unlocks_on": "funded"},
        {"name": "Delivered", "share_bps": 8000, "unlocks_on": "shipping_done"},
    ]
}


async def plan_of(client: httpx.AsyncClient, campaign: dict[str, Any], maker: Actor) -> list[tuple[str, int]]:
    response = await client.get(f"/api/v1/campaigns/{campaign['id']}/milestones", headers=maker.headers)
    assert response.status_code == 200, response.text
    return [(milestone["name"], milestone["share_bps"]) for milestone in response.json()]


async def test_a_campaign_keeps_the_milestone_plan_it_launched_with_when_its_space_changes_it(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    before, maker, operator = await launched_campaign(stripe_client, sessions, goal=PAIR)
    space = (await stripe_client.get(f"/api/v1/spaces/{before['space_id']}")).json()
    changed = await stripe_client.put(
        f"/api/v1/spaces/{space['id']}/milestone-plan", json=NEW_PLAN, headers=operator.headers
    )
    assert changed.status_code == 200, changed.text
    after, later_maker, _operator = await launched_campaign(
        stripe_client, sessions, goal=PAIR, space=space, operator=operator
    )
    # Until funding, the maker's funding page shows the steps the campaign will release escrow in.
    async with logged_in(stripe_client, maker) as browser:
        page = (await browser.get(f"/maker/campaigns/{before['slug']}/funding")).text
        assert "First batch confirmed" in page and "Tooling paid" not in page
    async with logged_in(stripe_client, later_maker) as browser:
        assert "Tooling paid" in (await browser.get(f"/maker/campaigns/{after['slug']}/funding")).text

    for campaign in (before, after):
        await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK])
        await pass_deadline(sessions, campaign["id"])
    assert (await sweep(sessions, stripe_settings, jobs))["close-campaigns"] == 2
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)

    for campaign in (before, after):
        assert (await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}")).json()["status"] == "funded"
    assert await plan_of(stripe_client, before, maker) == [
        ("Funding", 5000),
        ("First batch confirmed", 3000),
        ("Shipping done", 2000),
    ]
    assert await plan_of(stripe_client, after, later_maker) == [("Tooling paid", 2000), ("Delivered", 8000)]
