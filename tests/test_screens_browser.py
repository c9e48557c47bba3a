"""The screens added for operators, makers and backers in Chromium, at 1280 and 390 wide in English and Chinese: none
scrolls sideways on a phone, none logs a console error. Screenshots are kept in /tmp/shots/screens."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, Page
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Product
from tests.browser import (
    LiveServer,
    chromium_available,
    console_errors,
    launch_browser,
    log_in_page,
    new_page,
    screenshot,
)
from tests.helpers import Actor, launched_campaign
from tests.test_fulfillment_pages import confirmed_shop, first_batch_id, shipments_count
from tests.test_money_pages import funded_campaign
from tests.test_space_editing import space_with_operator
from tests.test_updates import post, titles

SHOTS = "/tmp/shots/screens"
WIDTHS = (1280, 390)
LOCALES = (("en-US", "en"), ("zh-CN", "zh"))

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")]


# The selects whose chosen option does not fit in them (the text measured in the select's font, beside the room the
# select leaves for it once its padding and its arrow are taken off).
CUT_OFF_SELECTS = """() => {
  const context = document.createElement("canvas").getContext("2d");
  return [...document.querySelectorAll("select")].filter((select) => select.offsetParent !== null).filter((select) => {
    const style = getComputedStyle(select);
    context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const text = select.selectedOptions.length ? select.selectedOptions[0].text : "";
    const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 24;
    return context.measureText(text).width > room;
  }).map((select) => `${select.id || select.name}: ${select.selectedOptions[0].text}`);
}"""


async def look_at(browser: Browser, base: str, name: str, actor: Actor | None, path: str) -> None:
    """The page at both widths in both languages: shot, no sideways scroll, no select cutting off its choice, no
    console error."""
    for locale, lang in LOCALES:
        for width in WIDTHS:
            async with new_page(browser, width=width, height=844, locale=locale) as page:
                errors = console_errors(page)
                if actor is None:
                    response = await page.goto(base + path)
                else:
                    response = await log_in_page(page, base, actor, then=path)
                assert response is not None and response.status == 200, (name, lang, width)
                await screenshot(page, f"{SHOTS}/{name}-{width}-{lang}.png")
                overflow = await page.evaluate("document.scrollingElement.scrollWidth") - width
                assert overflow <= 0, (name, lang, width, overflow)
                assert await page.evaluate(CUT_OFF_SELECTS) == [], (name, lang, width)
                assert errors == [], (name, lang, width, errors)


async def test_the_operators_space_form_fits_a_phone_and_a_desktop_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    space, operator, _admin = await space_with_operator(client, sessions)
    async with launch_browser() as browser:
        await look_at(browser, live_server.url, "space-form", operator, f"/operator/spaces/{space['id']}")


async def test_the_update_edit_form_and_its_deletion_question_fit_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    posted = (await post(client, maker, campaign, title="Tooling", body="The mould is **ready**.")).json()
    edit = f"/maker/campaigns/{campaign['slug']}/updates/{posted['id']}/edit"
    async with launch_browser() as browser:
        await look_at(browser, live_server.url, "update-edit", maker, edit)
        async with new_page(browser, width=390, height=844, locale="zh-CN") as page:
            errors = console_errors(page)
            await log_in_page(page, live_server.url, maker)
            await page.goto(live_server.url + edit)
            await page.locator("button.btn-danger").click()
            await page.locator(".confirm-card").wait_for()
            await screenshot(page, f"{SHOTS}/update-delete-question-390-zh.png")
            await page.locator(".confirm-card button[type=submit]").click()
            await page.wait_for_url(f"**/maker/campaigns/{campaign['slug']}?done=update-deleted#updates")
            assert errors == []
    assert await titles(client, None, campaign) == []


async def test_a_batchs_packages_with_their_tracking_forms_fit_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    shop, slug = await confirmed_shop(client, sessions)
    packages = f"/maker/campaigns/{slug}/fulfillment/batches/{await first_batch_id(sessions, shop)}/packages"
    async with launch_browser() as browser:
        await look_at(browser, live_server.url, "packages", shop.maker, packages)
        async with new_page(browser, width=390, height=844, locale="en-US") as page:
            await log_in_page(page, live_server.url, shop.maker)
            await page.goto(live_server.url + packages)
            first = page.locator(".package-card").first
            await first.locator("input[name=carrier]").fill("SF Express")
            await first.locator("input[name=tracking_number]").fill("SF100")
            await first.locator("button[type=submit]").click()
            await page.locator(".notice-success").wait_for()
            await screenshot(page, f"{SHOTS}/packages-saved-390-en.png")
    assert await shipments_count(sessions) == 1


async def tables_wider_than_their_box(page: Page) -> list[str]:
    """The tables that scroll sideways inside their box (or stick out of the page) at this width."""
    found: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll("table")].filter((table) => {
            const box = table.closest(".table-wrap") || table.parentElement;
            return box.scrollWidth > box.clientWidth + 1
                || table.getBoundingClientRect().right > document.documentElement.clientWidth + 1;
        }).map((table) => table.className)"""
    )
    return found


async def test_the_batch_cost_and_the_funding_tables_read_as_cards_on_a_phone(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    review = await funded_campaign(client, sessions, status="in_review")
    funded = await funded_campaign(client, sessions)
    async with sessions.begin() as session:
        for campaign_id in (review.campaign_id, funded.campaign_id):
            await session.execute(
                update(Product)
                .where(Product.campaign_id == campaign_id)
                .values(name="温湿度传感器主板（含天线与外壳）", unit_cost=1_234_567, batch_size=10_000)
            )
    pages = {
        "batch-cost": (review.operator, f"/operator/campaigns/{review.slug}", ".batch-cost"),
        "funding": (funded.maker, f"/maker/campaigns/{funded.slug}/funding", ".chart-table table"),
    }
    async with launch_browser() as browser:
        for locale, lang in LOCALES:
            for name, (actor, path, table) in pages.items():
                async with new_page(browser, width=390, height=844, locale=locale) as page:
                    errors = console_errors(page)
                    await log_in_page(page, live_server.url, actor)
                    await page.goto(live_server.url + path)
                    await page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
                    await page.locator(table).wait_for()
                    await screenshot(page, f"{SHOTS}/tables-{name}-390-{lang}.png")
                    assert await tables_wider_than_their_box(page) == [], (name, lang)
                    overflow = await page.evaluate("document.scrollingElement.scrollWidth") - 390
                    assert overflow <= 0, (name, lang, overflow)
                    assert errors == [], (name, lang, errors)
