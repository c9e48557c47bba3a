"""Discover: tabs for live, funded and recently successful campaigns, sorted newest, ending soon or most backed."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Pledge
from tests.helpers import launched_campaign, sign_up
from tests.pages import log_in, new_browser


def shown(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return re.findall(r'class="card-link" href="/campaigns/([^"]+)"', page.text)


async def set_campaign(sessions: async_sessionmaker[AsyncSession], campaign: dict[str, Any], **values: Any) -> None:
    async with sessions.begin() as session:
        await session.execute(update(Campaign).where(Campaign.id == uuid.UUID(campaign["id"])).values(**values))


async def backed_by_one(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], campaign: dict[str, Any]
) -> None:
    """One backer chooses the Early bird through the form; their card counts as saved (the pledge is active)."""
    async with new_browser(client) as browser:
        token = await log_in(browser, await sign_up(client, "Gil"))
        form = {"csrf_token": token, "tier": campaign["tiers"][0]["id"], "bonus": "", "shipping_country": "CN"}
        chosen = await browser.post(f"/campaigns/{campaign['slug']}/back", data=form | {"action": "pledge"})
        assert chosen.status_code == 303, chosen.text
    pledge_id = uuid.UUID(chosen.headers["location"].split("/")[3])
    async with sessions.begin() as session:
        await session.execute(update(Pledge).where(Pledge.id == pledge_id).values(status="active"))


@pytest.fixture
async def four_campaigns(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, str]:
    """Quiet (live, launched last, ends last), popular (live, at its goal, one backer), succeeded 5 days ago, and
    succeeded 100 days ago."""
    now = datetime.now(UTC)
    made: dict[str, dict[str, Any]] = {}
    for name in ("popular", "quiet", "recent", "old"):
        made[name], _maker, _operator = await launched_campaign(stripe_client, sessions)
    await backed_by_one(stripe_client, sessions, made["popular"])
    await set_campaign(
        sessions, made["popular"], goal=100, launched_at=now - timedelta(days=3), ends_at=now + timedelta(days=5)
    )
    await set_campaign(sessions, made["quiet"], launched_at=now - timedelta(days=1), ends_at=now + timedelta(days=20))
    await set_campaign(sessions, made["recent"], status="successful", ends_at=now - timedelta(days=5))
    await set_campaign(sessions, made["old"], status="fulfilled", ends_at=now - timedelta(days=100))
    return {name: campaign["slug"] for name, campaign in made.items()}


async def test_discover_shows_live_funded_and_recently_successful_campaigns_in_tabs(
    stripe_client: httpx.AsyncClient, four_campaigns: dict[str, str]
) -> None:
    slugs = four_campaigns
    live = await stripe_client.get("/campaigns")
    assert shown(live) == [slugs["quiet"], slugs["popular"]]
    assert '<a href="/campaigns" aria-current="page">Live</a>' in live.text
    assert '<a href="/campaigns?tab=funded">Funded</a>' in live.text
    assert '<a href="/campaigns?tab=recent">Recently successful</a>' in live.text
    funded = await stripe_client.get("/campaigns?tab=funded")
    assert shown(funded) == [slugs["popular"]]
    assert '<a href="/campaigns?tab=funded" aria-current="page">Funded</a>' in funded.text
    assert '<input type="hidden" name="tab" value="funded">' in funded.text
    assert shown(await stripe_client.get("/campaigns?tab=recent")) == [slugs["recent"]]

    chinese = await stripe_client.get("/campaigns?tab=recent&lang=zh_CN")
    assert shown(chinese) == [slugs["recent"]]
    assert "近期成功" in chinese.text and "即将结束" in chinese.text and "支持者最多" in chinese.text
    assert "最近两个月内达到目标的项目" in chinese.text and "Projects that reached their goal" not in chinese.text


async def test_discover_sorts_by_newest_ending_soon_and_most_backed(
    stripe_client: httpx.AsyncClient, four_campaigns: dict[str, str]
) -> None:
    slugs = four_campaigns
    assert shown(await stripe_client.get("/campaigns?sort=newest")) == [slugs["quiet"], slugs["popular"]]
    ending = await stripe_client.get("/campaigns?sort=ending")
    assert shown(ending) == [slugs["popular"], slugs["quiet"]]
    assert '<option value="ending" selected>Ending soon</option>' in ending.text
    assert '<a href="/campaigns?sort=ending&amp;tab=funded">Funded</a>' in ending.text
    assert shown(await stripe_client.get("/campaigns?sort=backed")) == [slugs["popular"], slugs["quiet"]]


@pytest.mark.parametrize(
    "query",
    [
        "tab=nope",
        "sort=oldest",
        "tab=&sort=",
        "page=-1",
        "page=abc",
        "page=99999999999999",
        "page=²",
        "page=" + "9" * 5_000,
        "tab=live%00",
        "sort[]=x",
    ],
)
async def test_discover_falls_back_to_its_defaults_for_bad_tabs_sorts_and_pages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], query: str
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    page = await client.get(f"/campaigns?{query}")
    assert shown(page) == [campaign["slug"]]
    assert '<a href="/campaigns" aria-current="page">Live</a>' in page.text
    assert '<option value="newest" selected>Newest</option>' in page.text


async def test_discover_pages_through_a_sorted_tab_without_repeats(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.pages import campaigns as pages

    monkeypatch.setattr(pages, "CARDS_PER_PAGE", 2)
    now = datetime.now(UTC)
    slugs = []
    for days in (9, 3, 6):
        campaign, _maker, _operator = await launched_campaign(client, sessions)
        await set_campaign(sessions, campaign, ends_at=now + timedelta(days=days))
        slugs.append((days, campaign["slug"]))
    first = await client.get("/campaigns?sort=ending")
    more = re.search(r'href="(/campaigns\?[^"]+)">More campaigns<', first.text)
    assert more is not None
    second = await client.get(more.group(1).replace("&amp;", "&"))
    assert shown(first) + shown(second) == [slug for _days, slug in sorted(slugs)]
    assert "More campaigns" not in second.text
