"""In a real browser: a campaign goes from a maker's draft through its space's review to the discover page."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.browser import LiveServer, chromium_available, console_errors, launch_browser, new_page
from tests.helpers import PASSWORD, Actor, create_space, make_admin, make_operator, sign_up, spend_recovery_code


async def log_in(page: Page, base: str, actor: Actor) -> None:
    await page.goto(base + "/login")
    await page.get_by_label("Email").fill(actor.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    if actor.recovery_codes:
        await page.get_by_label("Code").fill(spend_recovery_code(actor))
        await page.get_by_role("button", name="Log in").click()
    await expect(page.locator(".account-name")).to_be_visible()


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_campaign_is_drafted_reviewed_launched_and_discovered_through_the_pages(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    base = live_server.url
    async with httpx.AsyncClient(base_url=base) as api:
        admin = await make_admin(sessions, await sign_up(api, "Admin", sessions=sessions))
        space = await create_space(api, admin, name="Chaihuo x.factory")
        operator = await make_operator(api, admin, space, name="Olu", sessions=sessions)
        maker = await sign_up(api, "Ada", sessions=sessions)

    async with launch_browser() as browser, new_page(browser) as page:
        errors = console_errors(page)
        await log_in(page, base, maker)
        await page.get_by_role("link", name="My campaigns").click()
        await page.get_by_role("link", name="Start a campaign").first.click()
        await page.get_by_label("Title", exact=True).fill("Desk Lamp")
        await page.get_by_label("Summary", exact=True).fill("A warm lamp for late soldering.")
        await page.get_by_label("Story").first.fill("## Why\n\nBecause the bench is dark.")
        await page.get_by_label("Currency").select_option("CNY")
        await page.get_by_label("Goal").fill("5000.00")
        await page.get_by_label("Makerspace").select_option(space["id"])
        await page.get_by_label("Duration in days").fill("30")
        await page.get_by_role("button", name="Save the draft").click()
        await expect(page.locator(".notice-success")).to_contain_text("Your draft is saved.")
        manage_url = page.url.split("?")[0]

        await page.get_by_role("link", name="Add a product").click()
        await page.get_by_label("SKU").fill("LAMP-1")
        await page.get_by_label("Name", exact=True).fill("Desk lamp")
        await page.get_by_label("Weight in grams").fill("900")
        await page.get_by_label("Cost per unit").fill("60.50")
        await page.get_by_label("Units per manufacturing batch").fill("200")
        await page.get_by_role("button", name="Add the product").click()
        await expect(page.locator(".notice-success")).to_contain_text("The product is added.")

        await page.get_by_role("link", name="Add a reward tier").click()
        await page.get_by_label("Title", exact=True).fill("Early bird")
        await page.get_by_label("Price").fill("149.00")
        # four months on: after any deadline a campaign of at most 60 days launched today can have
        await page.get_by_label("Estimated delivery").fill((date.today() + timedelta(days=120)).strftime("%Y-%m"))
        await page.locator("#limit-limited").check()
        await page.locator("#field-quantity_limit").fill("50")
        await page.get_by_label("Product, row 1").select_option("LAMP-1")
        await page.get_by_label("Country, row 1").select_option("CN")
        await page.get_by_label("Fee, row 1").fill("10")
        await page.get_by_role("button", name="Add the tier").click()
        await expect(page.locator(".notice-success")).to_contain_text("The reward tier is added.")

        await page.get_by_role("button", name="Submit for review").click()
        await expect(page.locator(".notice-success")).to_contain_text("Submitted.")
        assert errors == []

        async with new_page(browser) as review_page:  # the operator, in a browser of their own
            review_errors = console_errors(review_page)
            await log_in(review_page, base, operator)
            await review_page.get_by_role("link", name="Review queue").click()
            await review_page.get_by_role("link", name="Desk Lamp").click()
            for item in ("prototype", "bill_of_materials", "manufacturing_quote", "certifications"):
                await review_page.locator(f'label[for="checklist-{item}-yes"]').click()
            await review_page.get_by_label("Notes").fill("Prototype and factory quote seen at the space.")
            await review_page.locator("#decision-approve").check()
            await review_page.get_by_role("button", name="Record the decision").click()
            await expect(review_page.locator(".notice-success")).to_contain_text("Approved.")
            assert review_errors == []

        await page.goto(manage_url)
        await page.get_by_role("button", name="Launch the campaign").click()
        await expect(page.locator(".confirm-consequences")).to_contain_text("It goes live at once")
        await page.get_by_role("button", name="Yes, launch it").click()
        await expect(page.locator(".notice-success")).to_contain_text("Your campaign is live.")
        assert errors == []

        async with new_page(browser, width=375, locale="zh-CN") as stranger:
            stranger_errors = console_errors(stranger)
            await stranger.goto(base + "/campaigns")
            await stranger.get_by_role("link", name="Desk Lamp").click()
            await expect(stranger.locator("h1")).to_have_text("Desk Lamp")
            await expect(stranger.locator(".sponsor-notes")).to_contain_text("Prototype and factory quote seen")
            await expect(stranger.get_by_role("link", name="支持这个项目").first).to_be_visible()
            assert stranger_errors == []
