"""The match on a phone (390 px) in Chromium, in English and Chinese: the campaign page's line and the operator's
section read whole, and nothing scrolls sideways, with a long sponsor name."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Pledge, Space
from campaigns.pledges.models import Match, PledgeItem
from tests.browser import LiveServer, chromium_available, console_errors, launch_browser, log_in_page, new_page
from tests.helpers import launched_campaign

PHONE = 390
SPONSOR = "深圳市南山区创客空间联合会·硬件创业扶持基金（Shenzhen Nanshan Makerspace Alliance Hardware Fund）"


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_the_match_reads_whole_on_a_phone_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    campaign, _maker, operator = await launched_campaign(client, sessions)
    async with sessions.begin() as session:
        live = await session.get_one(Campaign, uuid.UUID(campaign["id"]))
        space = await session.get_one(Space, live.space_id)
        pledge = Pledge(
            campaign_id=live.id, backer_id=uuid.UUID(operator.id), is_match=True, amount=1_234_500,
            bonus=1_234_500, currency=live.currency, status="active",
        )  # fmt: skip
        session.add(pledge)
        await session.flush()
        session.add(PledgeItem(pledge_id=pledge.id, position=0, kind="bonus", quantity=1, unit_amount=1_234_500))
        session.add(
            Match(
                pledge_id=pledge.id, campaign_id=live.id, space_id=space.id, sponsor_name=SPONSOR, cap=1_234_500,
                currency=live.currency, created_by=pledge.backer_id,
            )
        )  # fmt: skip
    base = live_server.url
    async with launch_browser() as browser:
        for locale, line in (("en-US", "Matched 1:1 by"), ("zh-CN", "按 1:1 配捐")):
            async with new_page(browser, width=PHONE, height=844, locale=locale) as page:
                errors = console_errors(page)
                await log_in_page(page, base, operator)
                for path, where in (
                    (f"/campaigns/{campaign['slug']}", ".funding-match"),
                    (f"/operator/campaigns/{campaign['slug']}", "#match"),
                ):
                    response = await page.goto(base + path)
                    assert response is not None and response.status == 200, path
                    shown = page.locator(where)
                    assert line in await shown.inner_text() and SPONSOR in await shown.inner_text(), (locale, path)
                    box = await shown.bounding_box()
                    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE, (locale, path, box)
                    scroll: int = await page.evaluate("document.scrollingElement.scrollWidth")
                    assert scroll <= PHONE, (locale, path, scroll)
                assert errors == [], errors
