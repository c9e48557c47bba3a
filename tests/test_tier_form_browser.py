"""The tier form in Chromium: "More rows" adds rows in the page without losing what was typed, a country is picked
from the list and a month from the picker; an image over the limit is stopped before it is sent."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.images import MAX_IMAGE_BYTES
from tests.browser import LiveServer, chromium_available, console_errors, launch_browser, new_page, screenshot
from tests.helpers import DELIVERY, PASSWORD, add_product, create_campaign, sign_up
from tests.test_campaign_pages import a_space_with_operator

SHOTS = "/tmp/shots/tier-form"


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_maker_adds_rows_picks_a_country_and_a_month_without_losing_input(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space)
    await add_product(client, maker, campaign)
    await add_product(client, maker, campaign, sku="SKU-B", name="Gateway", batch_size=200)
    form = f"{live_server.url}/maker/campaigns/{campaign['slug']}/tiers/new"

    async with launch_browser() as browser:
        for width, lang in ((1280, "en"), (390, "en"), (1280, "zh_CN"), (390, "zh_CN")):
            async with new_page(browser, width=width, height=844) as page:
                errors = console_errors(page)
                await page.goto(f"{live_server.url}/login?lang={lang}&next=/maker")
                await page.locator("input[name=email]").fill(maker.email)
                await page.locator("input[name=password]").fill(PASSWORD)
                await page.locator("form button[type=submit]").first.click()
                await page.wait_for_url(re.compile(r"/maker$"))
                # Signed in, pages speak the account's language: the switch sets it.
                await page.goto(form if lang == "en" else f"{form}?lang={lang}")
                await screenshot(page, f"{SHOTS}/empty-{width}-{lang}.png")
                assert errors == []
                if width != 1280 or lang != "en":
                    continue

                await page.locator("#field-title").fill("Early bird")
                await page.locator("#field-price").fill("149")
                await page.locator("#field-estimated_delivery").fill(DELIVERY)
                await page.locator("#items-0-sku").select_option("SKU-A")
                await page.locator("#items-0-quantity").fill("2")
                await page.locator("#items-1-sku").select_option("SKU-B")
                await page.locator("#shipping-0-country").select_option(label="Germany")
                await page.locator("#shipping-0-fee").fill("20")
                await page.locator("#shipping-1-country").select_option("CN")
                await page.locator("#shipping-1-fee").fill("10")
                await page.locator("#shipping-2-country").select_option("AU")
                await page.locator("#shipping-2-fee").fill("30")

                await page.get_by_role("button", name="More rows").click()
                await page.locator("#shipping-3-country").wait_for()
                assert page.url == form  # no reload: the page is the same one
                assert await page.locator("#field-title").input_value() == "Early bird"
                assert await page.locator("#field-estimated_delivery").input_value() == DELIVERY
                assert await page.locator("#items-0-quantity").input_value() == "2"
                assert await page.locator("#shipping-2-country").input_value() == "AU"
                assert await page.locator("#items-2-sku").input_value() == ""
                assert await page.locator("label[for=shipping-3-country]").inner_text() == "Country, row 4"
                await page.locator("#shipping-3-country").select_option(label="Everywhere else")
                await page.locator("#shipping-3-fee").fill("80")
                await screenshot(page, f"{SHOTS}/rows-added-{width}-{lang}.png")

                await page.get_by_role("button", name="Add the tier").click()
                await page.wait_for_url(re.compile(r"done=tier-added"))

                # The image limit is checked in the page before anything is sent.
                picker = page.locator("#field-file")
                too_big = {"name": "big.png", "mimeType": "image/png", "buffer": b"\0" * (MAX_IMAGE_BYTES + 1)}
                await picker.set_input_files(too_big)  # type: ignore[arg-type]
                message = page.locator("#field-file-error")
                await message.wait_for(state="visible")
                assert "an image may be at most 5 MB" in await message.inner_text()
                before = page.url
                # The image's own form: the page also has the evidence upload's.
                await picker.locator("xpath=ancestor::form").get_by_role("button", name="Upload").click()
                assert page.url == before and await message.is_visible()
                assert errors == []

    detail = (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()
    [tier] = detail["tiers"]
    assert tier["estimated_delivery"] == DELIVERY
    assert tier["items"] == [{"sku": "SKU-A", "quantity": 2}, {"sku": "SKU-B", "quantity": 1}]
    assert tier["shipping"] == [
        {"country": "DE", "fee": 2_000},
        {"country": "CN", "fee": 1_000},
        {"country": "AU", "fee": 3_000},
        {"country": "*", "fee": 8_000},
    ]
    assert detail["images"] == [] and detail["cover"] is None
