"""Shipping by weight in Chromium at phone width: the reward page's live total finds the bracket of the lamp and the
add-ons as the backer types, and the maker's shipping form fits the screen in Chinese."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.app import create_app
from service.broker import ListSender
from service.settings import Settings
from tests.browser import chromium_available, console_errors, launch_browser, log_in_page, new_page, screenshot, serve
from tests.helpers import sign_up
from tests.test_shipping_by_weight import weighed_shop


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_the_live_total_weighs_the_lamp_and_add_ons_at_phone_width(
    client: httpx.AsyncClient, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await weighed_shop(client, sessions)
    backer = await sign_up(client, "Bea")
    with serve(create_app(settings, sender=ListSender(), engine_pool=3)) as server:
        async with launch_browser() as browser:
            async with new_page(browser, width=390, height=844, locale="en-US") as page:
                errors = console_errors(page)
                await log_in_page(page, server.url, backer)
                await page.goto(f"{server.url}/campaigns/{shop.campaign['slug']}/back?tier={shop.tier_id}")
                await page.locator(f"input[name='variant.{shop.lamp['id']}.colour'][value='black']").check()
                await page.locator("select[name=shipping_country]").select_option("CN")
                shipping = page.locator('[data-summary="shipping"]')
                assert (await shipping.inner_text()).endswith("8.00")  # 120 g
                await page.locator(f"input[name='addon.{shop.shade['id']}']").fill("1")
                await page.locator(f"select[name='addon.{shop.shade['id']}.colour']").select_option("white")
                assert (await shipping.inner_text()).endswith("12.00")  # 180 g
                await page.locator(f"input[name='addon.{shop.cable['id']}']").fill("1")
                await page.locator(f"input[name='addon.{shop.cable['id']}']").dispatch_event("change")
                assert (await shipping.inner_text()).endswith("20.00")  # 220 g
                total = await page.locator('[data-summary="total"]').inner_text()
                assert total.endswith(f"{(39_900 + 1_900 + 2_900 + 2_000) / 100:,.2f}"), total
                assert await page.evaluate("document.documentElement.scrollWidth") <= 390
                await screenshot(page, "/tmp/shots/shipping-weight-reward-390-en-US.png")
                assert errors == []
            async with new_page(browser, width=390, height=844, locale="zh-CN") as page:
                await log_in_page(page, server.url, shop.maker)
                await page.goto(f"{server.url}/maker/campaigns/{shop.campaign['slug']}/shipping")
                assert "按重量" in await page.locator("main").inner_text()
                assert await page.evaluate("document.documentElement.scrollWidth") <= 390
                await screenshot(page, "/tmp/shots/shipping-weight-form-390-zh-CN.png")
