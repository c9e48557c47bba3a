"""The delivery record in Chromium at desk (1280) and phone (390) width, in English and Chinese: the campaign page,
the maker's page and the space's page show it without scrolling sideways. Screenshots are kept in
/tmp/shots/delivery."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.browser import LiveServer, chromium_available, console_errors, launch_browser, new_page, screenshot
from tests.test_delivery_record import arrange_record

SHOTS = "/tmp/shots/delivery"
WIDTHS = (1280, 390)
LOCALES = (("en-US", "en", "Delivery record"), ("zh-CN", "zh", "交付记录"))

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs Debian's Chromium (make browser)")


async def test_the_record_reads_at_desk_and_phone_width_in_both_languages(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    arranged = await arrange_record(sessions)
    pages = {
        "campaign": f"/campaigns/{arranged.campaigns['late'].slug}",
        "maker": f"/makers/{arranged.maker_id}",
        "space": f"/spaces/{arranged.space_slug}",
    }
    async with launch_browser() as browser:
        for width in WIDTHS:
            for locale, short, heading in LOCALES:
                async with new_page(browser, width=width, locale=locale) as page:
                    errors = console_errors(page)
                    for name, path in pages.items():
                        await page.goto(live_server.url + path)
                        record = page.locator(".delivery-record")
                        await record.wait_for()
                        assert heading in await record.inner_text()
                        scroll_width: int = await page.evaluate("document.scrollingElement.scrollWidth")
                        assert scroll_width <= width, (name, width, locale)
                        box = await record.bounding_box()
                        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
                        await screenshot(page, f"{SHOTS}/{name}-{width}-{short}.png")
                    assert errors == []
