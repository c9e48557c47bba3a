"""A campaign's gallery thumbnails open a viewer, not the raw file: without JavaScript a page of its own per picture,
large, with the previous and the next; with JavaScript an overlay on the campaign page that Escape closes."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.browser import LiveServer, chromium_available, console_errors, launch_browser, new_page, screenshot
from tests.helpers import approve_campaign, create_space, drafted_campaign, make_admin, make_operator, sign_up

COLOURS = ((200, 60, 60), (60, 160, 60), (60, 60, 200))


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(buffer, "PNG")
    return buffer.getvalue()


async def campaign_with_gallery(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> tuple[dict[str, Any], list[str]]:
    """A live campaign with three gallery pictures; returns it and the pictures' addresses, in order."""
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space)
    urls = []
    for n, colour in enumerate(COLOURS):
        uploaded = await client.post(
            f"/api/v1/campaigns/{campaign['id']}/images",
            files={"file": (f"picture-{n}.png", png(colour), "image/png")},
            data={"role": "gallery"},
            headers=maker.headers,
        )
        assert uploaded.status_code == 201, uploaded.text
        urls.append(uploaded.json()["url"])
    assert (await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)).status_code == 200
    await approve_campaign(client, operator, campaign)
    launched = await client.post(f"/api/v1/campaigns/{campaign['id']}/launch", headers=maker.headers)
    assert launched.status_code == 200, launched.text
    return launched.json(), urls


async def test_a_thumbnail_links_to_the_pictures_page_with_the_previous_and_the_next(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, urls = await campaign_with_gallery(client, sessions)
    slug = campaign["slug"]
    page = (await client.get(f"/campaigns/{slug}")).text
    for n in (1, 2, 3):
        assert f'href="/campaigns/{slug}/pictures/{n}"' in page
    assert not any(f'href="{url}"' in page for url in urls), "a thumbnail links to the raw file"

    second = await client.get(f"/campaigns/{slug}/pictures/2")
    assert second.status_code == 200
    assert f'src="{urls[1]}"' in second.text and "Picture 2 of 3" in second.text
    assert f'href="/campaigns/{slug}/pictures/1" rel="prev"' in second.text
    assert f'href="/campaigns/{slug}/pictures/3" rel="next"' in second.text
    first = (await client.get(f"/campaigns/{slug}/pictures/1")).text
    assert 'rel="prev"' not in first and 'rel="next"' in first
    assert 'rel="next"' not in (await client.get(f"/campaigns/{slug}/pictures/3")).text
    for missing in ("0", "4", "two", "²", "9" * 5_000):  # none of them a 500
        assert (await client.get(f"/campaigns/{slug}/pictures/{missing}")).status_code == 404
    by_id = await client.get(f"/campaigns/{campaign['id']}/pictures/2")
    assert by_id.status_code == 301 and by_id.headers["location"] == f"/campaigns/{slug}/pictures/2"
    chinese = await client.get(f"/campaigns/{slug}/pictures/2", headers={"Accept-Language": "zh-CN"})
    assert "第 2 张图片，共 3 张" in chinese.text


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_with_javascript_a_thumbnail_opens_an_overlay_that_escape_closes_and_without_it_the_page(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], live_server: LiveServer
) -> None:
    campaign, urls = await campaign_with_gallery(client, sessions)
    base, slug = live_server.url, campaign["slug"]
    shots = "/tmp/shots/screens"
    async with launch_browser() as browser:
        for width, locale, lang in ((1280, "en-US", "en"), (390, "zh-CN", "zh")):
            async with new_page(browser, width=width, height=844, locale=locale) as page:
                errors = console_errors(page)
                await page.goto(f"{base}/campaigns/{slug}")
                thumbnail = page.locator(f"a[href='/campaigns/{slug}/pictures/2']")
                await thumbnail.click()
                viewer = page.locator("dialog.lightbox[open]")
                await viewer.wait_for()
                assert page.url == f"{base}/campaigns/{slug}"
                assert await viewer.locator("img").get_attribute("src") == urls[1]
                await screenshot(page, f"{shots}/lightbox-{width}-{lang}.png")
                await page.keyboard.press("ArrowRight")
                assert await viewer.locator("img").get_attribute("src") == urls[2]
                await viewer.locator(".lightbox-previous").click()
                assert await viewer.locator("img").get_attribute("src") == urls[1]
                await page.keyboard.press("Escape")
                await viewer.wait_for(state="detached")
                focused = await page.evaluate("document.activeElement.getAttribute('href')")
                assert focused == f"/campaigns/{slug}/pictures/2", "focus goes back to the thumbnail"
                assert errors == []

        context = await browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False)
        try:
            page = await context.new_page()
            await page.goto(f"{base}/campaigns/{slug}")
            await page.locator(f"a[href='/campaigns/{slug}/pictures/1']").click()
            await page.wait_for_url(f"{base}/campaigns/{slug}/pictures/1")
            await page.locator("a[rel=next]").click()
            await page.wait_for_url(f"{base}/campaigns/{slug}/pictures/2")
            assert await page.locator(".picture-large img").get_attribute("src") == urls[1]
            await screenshot(page, f"{shots}/picture-page-390-en.png")
            assert await page.evaluate("document.scrollingElement.scrollWidth") <= 390
        finally:
            await context.close()
