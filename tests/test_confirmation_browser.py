"""The confirmations and the honest empty states in Chromium, as people see them: at phone and desktop widths, in
English and Chinese, without JavaScript tricks (the buttons are plain forms), with screenshots kept in /tmp/shots."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Pledge
from payments.models import Milestone
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
from tests.helpers import Actor, sign_up
from tests.test_confirmations import a_campaign_of, campaign_status
from tests.test_fulfillment_pages import a_planned_shop
from tests.test_money_pages import funded_campaign, milestone_ids

SHOTS = "/tmp/shots/confirm"
WIDTHS = (1280, 390)
LOCALES = (("en-US", "en"), ("zh-CN", "zh"))


async def looks_right(page: Page, errors: list[str], name: str) -> None:
    """Screenshot; nothing wider than the screen; no console error."""
    await screenshot(page, f"{SHOTS}/{name}.png")
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, (name, overflow)
    assert errors == [], (name, errors)


async def ask_and_go_back(
    browser: Browser, base: str, *, actor: Actor, path: str, button: str, name: str, width: int, locale: str
) -> None:
    """Opens `path` as `actor`, presses the step's button, checks the confirmation page, and cancels it."""
    async with new_page(browser, width=width, locale=locale) as page:
        errors = console_errors(page)
        await log_in_page(page, base, actor, then=path)
        await page.locator(button).first.click()
        await page.wait_for_selector(".confirm-consequences li")
        await looks_right(page, errors, name)
        await page.locator(".confirm-actions a.btn").click()
        await page.wait_for_url(lambda url: "confirm" not in url and url.split("#")[0].endswith(path.split("#")[0]))


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_each_irreversible_step_asks_first_in_chromium_at_both_widths_and_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    base = live_server.url
    maker, backer = await sign_up(client, "Maker"), await sign_up(client, "Bea")
    approved, _product, _tier = await a_campaign_of(sessions, maker, "approved")
    draft, product, tier = await a_campaign_of(sessions, maker, "draft")
    live, _live_product, live_tier = await a_campaign_of(sessions, maker, "live")
    async with sessions.begin() as session:
        await session.execute(
            update(Campaign)
            .where(Campaign.id == live.id)
            .values(launched_at=datetime.now(UTC), ends_at=datetime.now(UTC) + timedelta(days=10))
        )
        pledge = await insert_pledge(session, live, live_tier, backer_id=backer.id, status="active")
    shop, shop_slug = await a_planned_shop(client, sessions, addressed=3)
    funded = await funded_campaign(client, sessions)
    first = uuid.UUID((await milestone_ids(sessions, funded))[0])
    async with sessions.begin() as session:
        await session.execute(update(Milestone).where(Milestone.id == first).values(status="requested"))

    steps = {
        "launch": (maker, f"/maker/campaigns/{approved.slug}", "form[action$='/launch'] button"),
        "remove-tier": (maker, f"/maker/campaigns/{draft.slug}", f"form[action$='/tiers/{tier.id}/remove'] button"),
        "remove-product": (
            maker,
            f"/maker/campaigns/{draft.slug}",
            f"form[action$='/products/{product.id}/remove'] button",
        ),
        "cancel-pledge": (backer, f"/me/pledges/{pledge.id}", "form[action$='/cancel'] button"),
        "confirm-batch": (shop.maker, f"/maker/campaigns/{shop_slug}/fulfillment", "form[action$='/confirm'] button"),
        "release": (funded.operator, "/operator/milestones", "form[action$='/release'] button"),
    }
    async with launch_browser() as browser:
        for locale, lang in LOCALES:
            for width in WIDTHS:
                for name, (actor, path, button) in steps.items():
                    if name == "cancel-pledge":  # its button sits in a closed disclosure
                        async with new_page(browser, width=width, locale=locale) as page:
                            errors = console_errors(page)
                            await log_in_page(page, base, actor, then=path)
                            await page.locator("details.disclosure-card summary").last.click()
                            await page.locator(button).click()
                            await page.wait_for_selector(".confirm-consequences li")
                            await looks_right(page, errors, f"{name}-{width}-{lang}")
                        continue
                    await ask_and_go_back(
                        browser,
                        base,
                        actor=actor,
                        path=path,
                        button=button,
                        name=f"{name}-{width}-{lang}",
                        width=width,
                        locale=locale,
                    )
        assert await campaign_status(sessions, approved.id) == "approved"
        async with sessions() as session:
            assert (await session.get_one(Pledge, pledge.id)).status == "active"
            assert (await session.get_one(Milestone, first)).status == "requested"

        # Confirming acts, at phone width in Chinese.
        async with new_page(browser, width=390, locale="zh-CN") as page:
            errors = console_errors(page)
            await log_in_page(page, base, maker, then=f"/maker/campaigns/{approved.slug}")
            await page.locator("form[action$='/launch'] button").click()
            await page.locator(".confirm-actions button[type=submit]").click()
            await page.wait_for_url(lambda url: "done=launched" in url)
            assert errors == []
    assert await campaign_status(sessions, approved.id) == "live"


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_the_honest_empty_states_in_chromium_at_both_widths_and_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    base = live_server.url
    live = await funded_campaign(client, sessions, status="live")
    funded = await funded_campaign(client, sessions)
    async with sessions.begin() as session:  # successful: the cards are about to be charged, nobody has paid yet
        unpaid = await insert_campaign(session, maker_id=funded.maker.id, status="successful")
        await insert_product(session, unpaid, "LAMP", batch_size=50)
        lamp = await insert_tier(session, unpaid, {"LAMP": 1})
        for _n in range(3):
            await insert_pledge(session, unpaid, lamp, status="active")
    pages = {
        "escrow-live": (None, live.escrow),
        "releases-empty": (live.operator, "/operator/milestones"),
        "funding-reached": (funded.maker, f"/maker/campaigns/{funded.slug}/funding"),
        "fulfillment-unpaid": (funded.maker, f"/maker/campaigns/{unpaid.slug}/fulfillment"),
    }
    async with launch_browser() as browser:
        for locale, lang in LOCALES:
            for width in WIDTHS:
                for name, (actor, path) in pages.items():
                    async with new_page(browser, width=width, locale=locale) as page:
                        errors = console_errors(page)
                        if actor is None:
                            response = await page.goto(base + path)
                        else:
                            response = await log_in_page(page, base, actor, then=path)
                        assert response is not None and response.status == 200, (name, width, lang)
                        await looks_right(page, errors, f"{name}-{width}-{lang}")
