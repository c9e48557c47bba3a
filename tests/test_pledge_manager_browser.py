"""The pledge manager in Chromium at phone width: after funding, a backer who chose a colour at pledge time adds an
add-on and pays for it with the saved card, asked once more first, and picks another colour for the add-on's line;
in English, then in Chinese."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payments.gateway import StripeGateway
from service.app import create_app
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.browser import chromium_available, console_errors, launch_browser, log_in_page, new_page, screenshot, serve
from tests.helpers import many_backers
from tests.pledge_manager_helpers import A, back_lamp, fund, launched_shop

SHOTS = "/tmp/shots/pledge-manager"


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_backer_pays_for_add_ons_in_the_pledge_manager_in_chromium_in_both_languages(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    shop = await launched_shop(stripe_client, sessions)
    [english, chinese] = await many_backers(sessions, 2)
    pledges = {
        backer.email: await back_lamp(stripe_client, stripe_server, shop, backer, colour=colour)
        for backer, colour in ((english, "white"), (chinese, "black"))
    }
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)

    steps = (
        (english, "en-US", shop.cable["id"], "Your card ending 4242 will be charged", "LAMP-WHT"),
        (chinese, "zh-CN", shop.shade["id"], "你尾号 4242 的卡将立即扣款", "LAMP-BLC"),
    )
    with serve(create_app(stripe_settings, sender=ListSender(), engine_pool=3)) as server:
        for backer, locale, add_on_id, asked, lamp in steps:
            pledge = pledges[backer.email]
            async with launch_browser() as browser, new_page(browser, width=390, locale=locale) as page:
                errors = console_errors(page)
                await log_in_page(page, server.url, backer)
                await page.goto(f"{server.url}/me/pledges/{pledge['id']}")
                await page.locator("a[data-manage]").click()
                await page.wait_for_selector("[data-contents]")
                assert lamp in await page.locator("[data-contents]").inner_text()
                form = page.locator(f'form[data-add-on="{add_on_id}"]')
                if await form.locator("select").count():
                    await form.locator("select").first.select_option("white")
                await form.locator("button[type=submit]").click()
                await page.wait_for_selector(".confirm-consequences li")
                assert asked in await page.locator(".confirm-consequences").inner_text()
                await screenshot(page, f"{SHOTS}/confirm-{locale}.png")
                await page.locator(".confirm-actions button[type=submit]").click()
                await page.wait_for_selector("[role=status]")
                await screenshot(page, f"{SHOTS}/paid-{locale}.png")
                contents = await page.locator("[data-contents]").inner_text()
                assert ("CABLE" if add_on_id == shop.cable["id"] else "SHADE-WHT") in contents
                if add_on_id == shop.shade["id"]:
                    # The shade's line has its own colour picker: white becomes black.
                    choices = page.locator('form[action$="/manage/variants"]')
                    await choices.locator('select[name^="line:"]').select_option("black")
                    await choices.locator("button[type=submit]").click()
                    await page.wait_for_selector("[role=status]")
                    contents = await page.locator("[data-contents]").inner_text()
                    assert "SHADE-BLC" in contents and "SHADE-WHT" not in contents, contents
                    await screenshot(page, f"{SHOTS}/recoloured-{locale}.png")
                overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, (locale, overflow)
                assert errors == [], errors
            shown = await stripe_client.get(f"{A}/pledges/{pledge['id']}", headers=backer.headers)
            assert shown.json()["items"][-1]["add_on_id"] == add_on_id
