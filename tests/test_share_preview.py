"""A shared campaign link previews as the campaign: Open Graph and Twitter card tags in the page's language."""

from __future__ import annotations

import io
import re

import httpx
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.settings import Settings
from tests.helpers import launched_campaign


def meta(page: str, name: str) -> str | None:
    found = re.search(rf'<meta (?:property|name)="{re.escape(name)}" content="([^"]*)">', page)
    return found.group(1) if found else None


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 20)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_a_campaign_page_carries_share_preview_tags_in_its_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    page = (await client.get(f"/campaigns/{campaign['slug']}", headers={"Accept-Language": "en"})).text
    assert meta(page, "og:title") == campaign["title"]
    assert meta(page, "og:description") == campaign["summary"]
    assert meta(page, "og:url") == f"{settings.base_url}/campaigns/{campaign['slug']}"
    assert meta(page, "og:locale") == "en_US" and meta(page, "og:locale:alternate") == "zh_CN"
    assert meta(page, "og:image") is None and meta(page, "twitter:card") == "summary"

    cover = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/images",
        files={"file": ("cover.png", png(1200, 630), "image/png")},
        data={"role": "cover"},
        headers=maker.headers,
    )
    assert cover.status_code == 201, cover.text
    chinese = (await client.get(f"/campaigns/{campaign['slug']}", headers={"Accept-Language": "zh-CN"})).text
    assert meta(chinese, "og:locale") == "zh_CN" and meta(chinese, "og:locale:alternate") == "en_US"
    assert meta(chinese, "og:image") == settings.base_url + cover.json()["url"]
    assert meta(chinese, "og:image").startswith(("http://", "https://"))  # type: ignore[union-attr]
    assert meta(chinese, "twitter:card") == "summary_large_image"
    assert meta(chinese, "twitter:image") == settings.base_url + cover.json()["url"]
