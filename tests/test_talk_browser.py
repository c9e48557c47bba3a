"""Messages and comments in Chromium: a backer on a phone (390 px, Chinese) asks the maker a question from the
campaign's page, the maker at a desk (English) sees the badge and answers, the backer reads the answer; then the maker
hides an abusive comment, asked once more. No page scrolls sideways; screenshots are kept in /tmp/shots/talk."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page
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
from tests.helpers import launched_campaign, sign_up

SHOTS = "/tmp/shots/talk"

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs Debian's Chromium (make browser)")


async def fits(page: Page, width: int) -> None:
    scroll_width: int = await page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll_width <= width, page.url


async def test_a_question_is_asked_and_answered_and_a_comment_is_hidden_in_chromium(
    live_server: LiveServer, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    backer = await sign_up(client, "Bao")
    troll = await sign_up(client, "Troll")
    slug, base = campaign["slug"], live_server.url
    rude = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/comments", json={"body": "Total **scam**"}, headers=troll.headers
    )
    assert rude.status_code == 201, rude.text

    async with launch_browser() as browser:
        async with new_page(browser, width=390, height=844, locale="zh-CN") as phone:
            errors = console_errors(phone)
            await log_in_page(phone, base, backer)
            await phone.goto(f"{base}/campaigns/{slug}")
            await phone.locator(f"a[href='/campaigns/{slug}/ask']").click()
            await phone.locator("#field-body").fill("外壳可以回收吗？")
            await fits(phone, 390)
            await screenshot(phone, f"{SHOTS}/ask-390-zh.png")
            await phone.locator("form.form button[type=submit]").click()
            await phone.wait_for_url(f"{base}/messages/**")
            conversation_url = phone.url.split("?")[0]
            assert "外壳可以回收吗？" in await phone.locator(".message-list").inner_text()
            await fits(phone, 390)
            await screenshot(phone, f"{SHOTS}/asked-390-zh.png")
            assert errors == []

        async with new_page(browser, width=1280, locale="en-US") as desk:
            errors = console_errors(desk)
            await log_in_page(desk, base, maker)
            assert await desk.locator("#site-nav-links .nav-badge").inner_text() == "1"
            await desk.locator("#site-nav-links a[href='/messages']").click()
            await desk.locator(".conversation-row").first.click()
            await desk.wait_for_url(conversation_url)
            await desk.locator("#field-body").fill("Yes: the case is PLA and recyclable.")
            await desk.locator("form.form button[type=submit]").click()
            await desk.wait_for_url(f"{conversation_url}?done=sent*")
            assert await desk.locator("#site-nav-links .nav-badge").count() == 0
            await screenshot(desk, f"{SHOTS}/answered-1280-en.png")

            await desk.goto(f"{base}/campaigns/{slug}/comments")
            await desk.locator(f"#comment-{rude.json()['id']} form[action$='/hide'] button").click()
            await desk.locator(".confirm-title").wait_for()
            assert "Hide this comment?" in await desk.locator(".confirm-title").inner_text()
            await desk.locator(".confirm-actions button[type=submit]").click()
            await desk.wait_for_url(f"{base}/campaigns/{slug}/comments*")
            hidden = desk.locator(f"#comment-{rude.json()['id']}")
            assert "Hidden" in await hidden.inner_text()
            await screenshot(desk, f"{SHOTS}/hidden-1280-en.png")
            # The maker's form to write to backers, on a phone.
            await desk.set_viewport_size({"width": 390, "height": 844})
            await desk.goto(f"{base}/maker/campaigns/{slug}/messages")
            await desk.locator("#field-audience").wait_for()
            await fits(desk, 390)
            await screenshot(desk, f"{SHOTS}/write-to-backers-390-en.png")
            assert errors == []

        async with new_page(browser, width=390, height=844, locale="zh-CN") as phone:
            errors = console_errors(phone)
            await log_in_page(phone, base, backer)
            menu_badge = phone.locator(".nav-badge-menu")
            assert await menu_badge.inner_text() == "1"
            box = await menu_badge.bounding_box()
            assert box is not None and box["width"] > 5 and box["x"] + box["width"] <= 390
            await screenshot(phone, f"{SHOTS}/badge-390-zh.png")
            await phone.goto(f"{base}/messages")
            assert "1 条新消息" in await phone.locator(".conversation-list").inner_text()
            await fits(phone, 390)
            await screenshot(phone, f"{SHOTS}/inbox-390-zh.png")
            await phone.goto(conversation_url)
            assert "Yes: the case is PLA and recyclable." in await phone.locator(".message-list").inner_text()
            await fits(phone, 390)
            await screenshot(phone, f"{SHOTS}/answer-read-390-zh.png")
            await phone.goto(f"{base}/campaigns/{slug}/comments")
            text = await phone.locator(".comment-list").inner_text()
            assert "scam" not in text and "这条评论已被创客或担保空间隐藏。" in text
            await fits(phone, 390)
            await screenshot(phone, f"{SHOTS}/comments-390-zh.png")
            assert errors == []
