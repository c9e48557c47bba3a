"""In a real browser, at a phone's width: an operator sets up two-factor from the banner, keeps the recovery codes, and
logs in again with a code from the app (computed here from the key the page shows, as the app does)."""

from __future__ import annotations

import time

import httpx
import pyotp
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.browser import LiveServer, chromium_available, console_errors, launch_browser, new_page, screenshot
from tests.helpers import PASSWORD, Actor, create_space, make_admin, sign_up

PHONE_WIDTH = 390


async def password_step(page: Page, base: str, actor: Actor) -> None:
    await page.goto(base + "/login")
    await page.locator("#field-email").fill(actor.email)
    await page.locator("#field-password").fill(PASSWORD)
    await page.locator("form.form button[type=submit]").click()


async def fits_the_screen(page: Page) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, (page.url, overflow)


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_an_operator_sets_up_two_factor_and_logs_in_with_a_code_on_a_phone(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession], locale: str
) -> None:
    base = live_server.url
    async with httpx.AsyncClient(base_url=base) as api:
        admin = await make_admin(sessions, await sign_up(api, "Admin", sessions=sessions))
        space = await create_space(api, admin)
        operator = await sign_up(api, "Olu", sessions=sessions)
        named = await api.post(
            f"/api/v1/spaces/{space['id']}/operators", json={"email": operator.email}, headers=admin.headers
        )
        assert named.status_code == 201

    async with launch_browser() as browser, new_page(browser, width=PHONE_WIDTH, locale=locale) as page:
        errors = console_errors(page)
        await password_step(page, base, operator)
        banner = page.locator("[data-two-factor-banner]")
        await expect(banner).to_be_visible()
        await banner.locator("a").click()
        await page.locator("form[action='/me/two-factor/start'] button").click()
        await expect(page.locator(".qr-code svg")).to_be_visible()
        await fits_the_screen(page)
        await screenshot(page, f"/tmp/shots/two-factor/set-up-{locale}.png")
        secret = (await page.locator("[data-totp-secret]").inner_text()).strip()

        await page.locator("#field-code").fill("000000")
        await page.locator("form[action='/me/two-factor/confirm'] button").click()
        await expect(page.locator("#field-code-error")).to_be_visible()
        assert [error for error in errors if "status of 422" not in error] == []  # the form shown again, as a 422
        errors.clear()
        await page.locator("#field-code").fill(pyotp.TOTP(secret).now())
        await page.locator("form[action='/me/two-factor/confirm'] button").click()
        codes = page.locator("[data-recovery-codes] li")
        await expect(codes).to_have_count(10)
        await expect(page.locator("[data-two-factor-banner]")).to_have_count(0)
        await fits_the_screen(page)
        await screenshot(page, f"/tmp/shots/two-factor/recovery-codes-{locale}.png")

        await page.locator("form[action='/logout'] button").click()
        await password_step(page, base, operator)
        code = page.locator("#field-code")
        await expect(code).to_be_visible()
        await expect(page.locator("form[action='/logout']")).to_have_count(0)
        await fits_the_screen(page)
        await code.fill(pyotp.TOTP(secret).at(time.time() + 30))  # the next code: the first one is spent
        await page.locator("form[action='/login/code'] button").click()
        await expect(page.locator("form[action='/logout']")).to_have_count(1)
        await page.goto(base + "/audit")
        # The admin made their space and named them its operator.
        await expect(page.locator("table.audit-log tbody tr")).to_have_count(2)
        await fits_the_screen(page)
        assert errors == []
