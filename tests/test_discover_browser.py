"""In a real browser: Discover's tabs and sorting at desktop and phone width, in English and Chinese."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.browser import LiveServer, chromium_available, console_errors, launch_browser, new_page, screenshot
from tests.helpers import launched_campaign

SHOTS = Path(os.environ.get("KINDLING_SCREENSHOTS", "/tmp/kindling-shots"))


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
@pytest.mark.parametrize(
    ("width", "locale", "tab", "sorting"),
    [
        (1280, "en-US", "Funded", "Sort by"),
        (390, "en-US", "Funded", "Sort by"),
        (1280, "zh-CN", "已完成筹款", "排序"),
        (390, "zh-CN", "已完成筹款", "排序"),
    ],
)
async def test_discover_tabs_and_sorting_fit_desktop_and_phone_in_both_languages(
    live_server: LiveServer,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    width: int,
    locale: str,
    tab: str,
    sorting: str,
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    async with launch_browser() as browser, new_page(browser, width=width, height=844, locale=locale) as page:
        errors = console_errors(page)
        await page.goto(live_server.url + "/campaigns")
        await expect(page.locator(".card-link")).to_have_text(campaign["title"])
        await screenshot(page, SHOTS / f"discover-{width}-{locale}.png")
        assert await page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0

        await page.get_by_label(sorting).select_option("ending")
        await page.locator(".filter-bar button[type=submit]").click()
        await expect(page).to_have_url(live_server.url + "/campaigns?q=&space=&province=&city=&sort=ending")
        await (
            page.get_by_role("navigation", name="Which campaigns" if locale == "en-US" else "显示哪些众筹")
            .get_by_role("link", name=tab)
            .click()
        )
        await expect(page).to_have_url(live_server.url + "/campaigns?sort=ending&tab=funded")
        await expect(page.locator(".empty-state h3")).to_be_visible()
        await screenshot(page, SHOTS / f"discover-funded-{width}-{locale}.png")
        assert await page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert errors == []
