"""A lamp in a chosen colour with spare cables, picked in Chromium at phone width in both languages: the live total
adds the cables and their shipping, and the card page shows what the server priced."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.app import create_app
from service.broker import ListSender
from service.settings import Settings
from tests.browser import chromium_available, console_errors, launch_browser, log_in_page, new_page, screenshot, serve
from tests.extras_helpers import lamp_campaign
from tests.helpers import sign_up


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_backer_picks_a_colour_and_cables_in_chromium_at_phone_width_in_both_languages(
    stripe_client: httpx.AsyncClient, stripe_settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    lamp = await lamp_campaign(stripe_client, sessions, cable_limit=10)
    words = {
        "en-US": ("Continue to payment", "Desk lamp (black)", "Quantity", "CN¥"),
        "zh-CN": ("继续付款", "Desk lamp (black)", "数量", "¥"),
    }
    with serve(create_app(stripe_settings, sender=ListSender(), engine_pool=3)) as server:
        for locale, (go_on, chosen, quantity, yuan) in words.items():
            backer = await sign_up(stripe_client, "Bea" if locale == "en-US" else "Li")
            async with launch_browser() as browser, new_page(browser, width=390, height=844, locale=locale) as page:
                errors = console_errors(page)
                await log_in_page(page, server.url, backer)
                await page.goto(f"{server.url}/campaigns/{lamp.json['slug']}/back?tier={lamp.lamp_tier}")
                await page.locator(f"input[name='variant.{lamp.lamp}.colour'][value='black']").check()
                cables = page.locator(f"input[name='addon.{lamp.cable}']")
                assert await page.get_by_text(quantity, exact=False).first.is_visible()
                await cables.fill("2")
                await page.locator("select[name=shipping_country]").select_option("CN")
                # 199.00 + 2 × 29.00 + 10.00 shipping + 2 × 5.00 for the cables, summed as the backer types.
                assert await page.locator('[data-summary="add_ons"]').inner_text() == f"{yuan}58.00"
                assert await page.locator('[data-summary="total"]').inner_text() == f"{yuan}277.00"
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"the page scrolls sideways at 390 px: {width}"
                await screenshot(page, f"/tmp/shots/pledge-choices-390-{locale}.png")
                await page.get_by_role("button", name=go_on).click()
                await page.wait_for_url(re.compile(r"/me/pledges/[0-9a-f-]{36}/card$"))
                figures = await page.locator("main").inner_text()
                assert chosen in figures and f"{yuan}277.00" in figures and f"{yuan}58.00" in figures
                await screenshot(page, f"/tmp/shots/pledge-choices-card-390-{locale}.png")
                assert errors == []
