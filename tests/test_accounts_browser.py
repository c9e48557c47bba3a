"""In a real browser at phone width: signing up, confirming the address from the mailed link, forgetting the
password and setting a new one from the link in the mail (both mails read from a real SMTP server)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.settings import Settings
from tests.account_helpers import mailed_link
from tests.browser import LiveServer, chromium_available, console_errors, launch_browser, new_page
from tests.helpers import PASSWORD, Inbox

NEW_PASSWORD = "a brand new passphrase"


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_new_user_confirms_their_address_then_resets_a_forgotten_password_in_the_browser(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    base = live_server.url
    email = "mei@example.com"
    async with launch_browser() as browser, new_page(browser, width=390, height=844) as page:
        errors = console_errors(page)
        await page.goto(base + "/signup")
        await page.get_by_label("Your name").fill("Mei")
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign up").click()
        account = page.get_by_role("navigation", name="Main").get_by_role("link", name="Account")
        await expect(page.get_by_role("button", name="Log out", exact=True)).to_be_visible()
        await page.get_by_role("checkbox", name="Menu").check()  # on a phone the links are in the menu
        await expect(account).to_be_visible()

        await account.click()
        await expect(page.get_by_role("heading", name="Your account")).to_be_visible()
        await expect(page.get_by_text("Confirm your email address first")).to_be_visible()
        await page.get_by_role("button", name="Send the link again").click()
        await expect(page.get_by_text("A new confirmation link is on its way.")).to_be_visible()

        link = await mailed_link(sessions, settings, smtp_inbox, email, "/verify-email/")
        await page.goto(base + link)
        await expect(page.get_by_role("heading", name="Your email address is confirmed")).to_be_visible()
        await page.goto(base + "/account")
        await expect(page.get_by_text(f"{email} is confirmed.")).to_be_visible()

        await page.get_by_role("button", name="Log out", exact=True).click()
        await page.goto(base + "/login")
        await page.get_by_role("link", name="Forgot your password?").click()
        await page.get_by_label("Email").fill(email)
        await page.get_by_role("button", name="Mail me a link").click()
        await expect(page.get_by_text(f"If an account uses {email}")).to_be_visible()

        reset = await mailed_link(sessions, settings, smtp_inbox, email, "/reset-password/")
        await page.goto(base + reset)
        await page.get_by_label("New password").fill(NEW_PASSWORD)
        await page.get_by_role("button", name="Save the new password").click()
        await page.wait_for_url(re.compile(r"/login\?done=password-reset$"))
        await expect(page.get_by_text("Your new password is saved.")).to_be_visible()
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(NEW_PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("button", name="Log out", exact=True)).to_be_visible()
        await page.get_by_role("checkbox", name="Menu").check()
        await expect(account).to_be_visible()
        await page.goto(base + "/account")
        await expect(page.get_by_text(f"Mei · {email}")).to_be_visible()
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        assert errors == []
