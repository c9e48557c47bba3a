"""Pages say only what is true now: a reached milestone is not "not yet reached", nothing is "all paid" before anything
was released, fulfillment is silent about addresses before anyone paid, and a live campaign's escrow page says what it
will show instead of not being found."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Pledge
from tests.pages import logged_in
from tests.test_fulfillment_api import open_shop
from tests.test_fulfillment_pages import slug_of
from tests.test_money_pages import PRICE, funded_campaign, milestone_ids, shown


def milestone_item(page: str, milestone_id: str) -> str:
    found = re.search(rf'<li class="milestone-item[^"]*" id="milestone-{milestone_id}">(.*?)</li>', page, re.S)
    assert found, f"milestone {milestone_id} is not on the page"
    return found.group(1)


async def test_a_funded_campaigns_first_milestone_reads_reached_not_not_yet_reached(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await funded_campaign(client, sessions)
    first, second, _third = await milestone_ids(sessions, funded)
    public = (await client.get(funded.escrow)).text
    async with logged_in(client, funded.maker) as browser:
        funding = (await browser.get(f"/maker/campaigns/{funded.slug}/funding")).text
        chinese = (await browser.get(f"/maker/campaigns/{funded.slug}/funding?lang=zh_CN")).text
    for page in (public, funding):
        reached = milestone_item(page, first)
        assert "Reached, not yet requested" in reached and "Unlocked: the maker may ask for it now." in reached
        assert "Not yet reached" not in reached and "Unlocks when the campaign is funded" not in reached
        assert "Not yet reached" in milestone_item(page, second)
    assert "尚未达到" not in milestone_item(chinese, first) and "尚未达到" in milestone_item(chinese, second)


async def test_the_escrow_desk_says_nothing_is_all_paid_before_anything_is_released(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    funded = await funded_campaign(client, sessions)
    async with logged_in(client, funded.operator) as browser:
        desk = (await browser.get("/operator/milestones")).text
    assert "Every released milestone is paid." not in desk
    assert "No milestone has been released yet" in desk


async def test_fulfillment_says_nothing_about_addresses_before_anyone_has_paid(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await open_shop(client, sessions, status="successful")
    async with sessions.begin() as session:
        await session.execute(update(Pledge).where(Pledge.campaign_id == shop.campaign_id).values(status="active"))
    page = f"/maker/campaigns/{await slug_of(sessions, shop)}/fulfillment"
    async with logged_in(client, shop.maker) as browser:
        before = (await browser.get(page)).text
        assert "Nothing to make yet" in before
        for words in ("Every paid reward has an address.", "Waiting for an address", "waiting for an address"):
            assert words not in before
        async with sessions.begin() as session:
            await session.execute(
                update(Pledge).where(Pledge.campaign_id == shop.campaign_id).values(status="collected")
            )
            await session.execute(update(Campaign).where(Campaign.id == shop.campaign_id).values(status="funded"))
        after = (await browser.get(page)).text
    assert "Waiting for an address" in after and "Backer0" in after


async def test_a_live_campaigns_escrow_page_says_what_it_will_show_after_the_deadline(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    live = await funded_campaign(client, sessions, status="live")
    page = await client.get(live.escrow)
    assert page.status_code == 200
    assert "is still taking pledges" in page.text and "What this page will show" in page.text
    assert (
        shown(4 * PRICE) in page.text
    )  # pledged so far, as the campaign page counts: three backers and an errored one
    assert "Funding" in page.text and "when the first manufacturing batch is confirmed" in page.text
    assert "Xiaoming" not in page.text
    chinese = await client.get(live.escrow + "?lang=zh_CN")
    assert chinese.status_code == 200 and "这个页面将会显示什么" in chinese.text
    moved = await client.get(f"/campaigns/{live.campaign_id}/escrow")
    assert moved.status_code == 301 and moved.headers["location"] == live.escrow


async def test_an_unsuccessful_campaigns_escrow_page_says_no_card_was_charged(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    failed = await funded_campaign(client, sessions, status="unsuccessful")
    page = await client.get(failed.escrow)
    assert page.status_code == 200
    assert "did not reach its goal" in page.text and "No card was charged" in page.text
    assert "What this page will show" not in page.text
