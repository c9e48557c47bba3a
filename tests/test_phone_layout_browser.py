"""Kindling on a phone (390 × 844) in Chromium, in English and Chinese: no page scrolls sideways, the navigation folds
into a menu that opens without JavaScript, wide tables read as cards, and Chinese reward names keep whole words on a
line. Screenshots are kept in /tmp/shots/phone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Page
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Product, Space, Tier
from tests.browser import (
    LiveServer,
    chromium_available,
    console_errors,
    launch_browser,
    log_in_page,
    new_page,
    screenshot,
)
from tests.factories import insert_campaign, insert_pledge, insert_product, insert_tier
from tests.helpers import Actor
from tests.test_fulfillment_pages import a_planned_shop
from tests.test_money_pages import funded_campaign

SHOTS = "/tmp/shots/phone"
PHONE = 390
LOCALES = (("en-US", "en"), ("zh-CN", "zh"))
CHINESE_REWARD = "早鸟价·温湿度传感器开发套件（含外壳与锂电池）"
CHINESE_PRODUCT = "温湿度传感器主板（含天线与外壳）"


async def sideways_scroll(page: Page) -> int:
    """How many pixels the page is wider than the phone's screen."""
    width: int = await page.evaluate("document.scrollingElement.scrollWidth")
    return width - PHONE


async def cramped_texts(page: Page, selector: str) -> list[str]:
    """The texts under `selector` squeezed into a column two characters wide or less, so that a label of several
    words is broken into a tall stack of one or two characters a line."""
    found: list[str] = await page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].filter((element) => {
            const style = getComputedStyle(element);
            const size = parseFloat(style.fontSize);
            const content = element.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
            const text = element.textContent.trim();
            const hidden = element.closest(".visually-hidden, .table-cards thead") !== null;
            return !hidden && element.clientWidth > 0 && text.length > 3 && content < 2.5 * size
                && element.getBoundingClientRect().height > 3 * size;
        }).map((element) => element.textContent.trim())""",
        selector,
    )
    return found


async def wrapped_header_buttons(page: Page) -> list[str]:
    """The header's buttons (the menu, log in, sign up, log out) whose label runs onto a second line."""
    found: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll(".site-header .btn, .nav-toggle")].filter((element) => {
            const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const range = document.createRange();
                range.selectNodeContents(node);
                const lines = [...range.getClientRects()].filter((r) => r.width > 0);
                const tops = new Set(lines.map((r) => Math.round(r.top)));
                if (tops.size > 1) return true;
            }
            return false;
        }).map((element) => element.textContent.trim())"""
    )
    return found


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_on_a_phone_no_page_scrolls_sideways_and_the_menu_opens_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    base = live_server.url
    review = await funded_campaign(client, sessions, status="in_review")
    shop, shop_slug = await a_planned_shop(client, sessions, addressed=1)
    backer = review.backers[0]
    async with sessions.begin() as session:  # the same maker's live and draft campaigns, without more sign-ups
        now = datetime.now(UTC)
        space_id = (await session.get_one(Campaign, review.campaign_id)).space_id
        live = await insert_campaign(
            session,
            maker_id=review.maker.id,
            status="live",
            launched_at=now - timedelta(days=3),
            ends_at=now + timedelta(days=20),
        )
        await insert_product(session, live, "BOARD", batch_size=100)
        await insert_tier(session, live, {"BOARD": 1}, price=19_900)
        pair = await insert_tier(session, live, {"BOARD": 2}, price=1_234_500, title="Pair")
        pledge = await insert_pledge(session, live, pair, backer_id=backer.id, status="active")
        draft = await insert_campaign(session, maker_id=review.maker.id, space_id=space_id, status="draft")
        await insert_product(session, draft, "BOARD", batch_size=100)
        await insert_tier(session, draft, {"BOARD": 1}, price=1_234_500)
        # A space with its province and a risk-compensation fund, as the space's page and form show them.
        await session.execute(
            update(Space)
            .where(Space.id == space_id)
            .values(province="Guangdong", fund_share_bps=2500, fund_cap=1_234_500)
        )
        space = await session.get_one(Space, space_id)
        for campaign_id in (live.id, review.campaign_id, draft.id):
            await session.execute(update(Tier).where(Tier.campaign_id == campaign_id).values(title=CHINESE_REWARD))
            await session.execute(
                update(Product).where(Product.campaign_id == campaign_id).values(name=CHINESE_PRODUCT)
            )
    pages: dict[str, tuple[Actor | None, str]] = {
        "home-visitor": (None, "/"),
        "home": (review.maker, "/"),
        "campaign": (review.maker, f"/campaigns/{live.slug}"),
        "choose-reward": (review.backers[1], f"/campaigns/{live.slug}/back"),
        "my-pledges": (backer, "/me/pledges"),
        "pledge": (backer, f"/me/pledges/{pledge.id}"),
        "maker-home": (review.maker, "/maker"),
        "maker-draft": (review.maker, f"/maker/campaigns/{draft.slug}"),
        "maker-campaign": (review.maker, f"/maker/campaigns/{review.slug}"),
        "fulfillment": (shop.maker, f"/maker/campaigns/{shop_slug}/fulfillment"),
        "review": (review.operator, f"/operator/campaigns/{review.slug}"),
        "queue": (review.operator, "/operator"),
        "discover": (None, "/campaigns"),
        "space": (None, f"/spaces/{space.slug}"),
        "space-form": (review.operator, f"/operator/spaces/{space.id}"),
    }
    async with launch_browser() as browser:
        for locale, lang in LOCALES:
            for name, (actor, path) in pages.items():
                async with new_page(browser, width=PHONE, height=844, locale=locale) as page:
                    errors = console_errors(page)
                    if actor is None:
                        response = await page.goto(base + path)
                    else:
                        response = await log_in_page(page, base, actor, then=path)
                    assert response is not None and response.status == 200, (name, lang)
                    await screenshot(page, f"{SHOTS}/{name}-{lang}.png")
                    assert await sideways_scroll(page) <= 0, (name, lang, await sideways_scroll(page))
                    assert await cramped_texts(page, "h2, h3, td, th, dd, dt, li, strong") == [], (name, lang)
                    assert await wrapped_header_buttons(page) == [], (name, lang)
                    assert errors == [], (name, lang, errors)

            # The menu: folded on the phone, opened by its button, with every link of the navigation.
            async with new_page(browser, width=PHONE, height=844, locale=locale) as page:
                errors = console_errors(page)
                await log_in_page(page, base, review.operator)
                discover = page.locator(".site-nav a[href='/campaigns']")
                assert not await discover.is_visible()
                await page.locator(".nav-toggle").click()
                await discover.wait_for(state="visible")
                await page.locator(".site-nav a[href='/operator']").wait_for(state="visible")
                await screenshot(page, f"{SHOTS}/menu-open-{lang}.png")
                assert await sideways_scroll(page) <= 0
                await discover.click()
                await page.wait_for_url(base + "/campaigns")
                assert errors == []

        # At desktop width the links are in the bar, without a menu button.
        async with new_page(browser, width=1280, locale="en-US") as page:
            await log_in_page(page, base, review.operator)
            assert await page.locator(".site-nav a[href='/campaigns']").is_visible()
            assert not await page.locator(".nav-toggle").is_visible()
