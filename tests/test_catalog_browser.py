"""The options, variants and add-ons pages in Chromium on a phone (390 × 844), in English and Chinese: nothing scrolls
sideways, and removing an add-on asks once more before it happens. Screenshots are kept in /tmp/shots/catalog."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.browser import (
    LiveServer,
    chromium_available,
    console_errors,
    launch_browser,
    log_in_page,
    new_page,
    screenshot,
)
from tests.test_catalog_pages import a_draft, campaign_json, lamp
from tests.test_phone_layout_browser import PHONE, cramped_texts, sideways_scroll

SHOTS = "/tmp/shots/catalog"
LOCALES = (("en-US", "en"), ("zh-CN", "zh"))


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_on_a_phone_the_catalog_pages_fit_and_removing_an_add_on_asks_first(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    base = live_server.url
    maker, _operator, draft = await a_draft(client, sessions)
    product = lamp(draft)
    variants = (
        await client.put(
            f"/api/v1/campaigns/{draft['id']}/products/{product['id']}/options",
            json={"options": [{"name": "颜色", "values": ["黑色", "白色"]}, {"name": "plug", "values": ["EU", "US"]}]},
            headers=maker.headers,
        )
    ).json()["variants"]
    for variant_id in (None, variants[0]["id"]):
        added = await client.post(
            f"/api/v1/campaigns/{draft['id']}/add-ons",
            json={"product_id": product["id"], "variant_id": variant_id, "price": 9_900, "limit": 5,
                  "tier_ids": [draft["tiers"][0]["id"]], "shipping": [{"country": "*", "fee": 2_000}]},
            headers=maker.headers,
        )  # fmt: skip
        assert added.status_code == 201, added.text
    slug = draft["slug"]
    pages = {
        "options": f"/maker/campaigns/{slug}/products/{product['id']}/options",
        "add-on": f"/maker/campaigns/{slug}/add-ons/new",
        "manage": f"/maker/campaigns/{slug}",
        "preview": f"/campaigns/{slug}",
    }
    async with launch_browser() as browser:
        for locale, lang in LOCALES:
            async with new_page(browser, width=PHONE, height=844, locale=locale) as page:
                errors = console_errors(page)
                await log_in_page(page, base, maker)
                for name, path in pages.items():
                    response = await page.goto(base + path)
                    assert response is not None and response.status == 200, (name, lang)
                    await screenshot(page, f"{SHOTS}/{name}-{lang}.png")
                    assert await sideways_scroll(page) <= 0, (name, lang, await sideways_scroll(page))
                    assert await cramped_texts(page, "h2, h3, td, th, dd, dt, li, strong") == [], (name, lang)
                assert errors == [], (lang, errors)

        async with new_page(browser, width=PHONE, height=844, locale="en-US") as page:
            await log_in_page(page, base, maker)
            await page.goto(base + pages["manage"])
            await page.locator("#add-ons form.inline-form button").first.click()
            await page.locator(".confirm-consequences").wait_for()
            assert "Remove this add-on?" in await page.content()
            await screenshot(page, f"{SHOTS}/remove-asks.png")
            assert len((await campaign_json(client, maker, draft))["add_ons"]) == 2, "asking removes nothing"
            await page.locator("form button[type=submit]", has_text="Yes, remove the add-on").click()
            await page.wait_for_url(f"{base}{pages['manage']}?done=add-on-removed#add-ons")
    assert len((await campaign_json(client, maker, draft))["add_ons"]) == 1
