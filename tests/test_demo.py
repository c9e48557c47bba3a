"""`kindling demo`: a space with its operator, a maker with a live campaign and one in review, loaded once."""

from __future__ import annotations

import httpx
import pyotp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import (
    Campaign,
    CampaignImage,
    CampaignUpdate,
    Mail,
    Product,
    Review,
    Space,
    Tier,
    User,
)
from service.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET, LIVE_SLUG, OPERATOR_EMAIL, REVIEW_SLUG, load_demo
from service.settings import Settings

COUNTED = (User, Space, Campaign, Product, Tier, CampaignImage, CampaignUpdate, Review, Mail)


async def counts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        return {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in COUNTED
        }


async def test_loading_the_demo_twice_changes_nothing_the_second_time(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions.begin() as session:
        await load_demo(session, settings)
    first = await counts(sessions)
    async with sessions.begin() as session:
        await load_demo(session, settings)
    assert await counts(sessions) == first
    assert first["campaigns"] == 2 and first["campaign_images"] == 5 and first["campaign_updates"] == 1

    async with sessions() as session:
        live = await session.scalar(select(Campaign).where(Campaign.slug == LIVE_SLUG))
        in_review = await session.scalar(select(Campaign).where(Campaign.slug == REVIEW_SLUG))
        assert live is not None and in_review is not None
        assert live.status == "live" and live.duration_days == 30 and live.ends_at is not None
        assert in_review.status == "in_review" and in_review.title.startswith("稻田卫士")
        tiers = list(await session.scalars(select(Tier).where(Tier.campaign_id == live.id).order_by(Tier.position)))
    assert [(t.quantity_limit, t.remaining) for t in tiers] == [(200, 3), (None, None), (50, 50)]


async def test_the_demo_campaign_is_on_the_discover_page_and_its_page_renders(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions.begin() as session:
        await load_demo(session, settings)

    discover = await client.get("/campaigns")
    assert discover.status_code == 200
    assert f'href="/campaigns/{LIVE_SLUG}"' in discover.text
    assert REVIEW_SLUG not in discover.text

    page = await client.get(f"/campaigns/{LIVE_SLUG}")
    assert page.status_code == 200
    assert "Loam: the open-source soil moisture sensor" in page.text
    assert "3 of 200 left" in page.text
    assert "Vetted and sponsored by" in page.text and "Chaihuo x.factory" in page.text
    assert "The pilot run is on the bench" in page.text
    assert "<h2>Where the money goes</h2>" in page.text
    cover = page.text.split('class="campaign-cover"')[1].split('src="')[1].split('"')[0]
    image = await client.get(cover)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert (await client.get(f"/campaigns/{REVIEW_SLUG}")).status_code == 404

    without_code = await client.post("/api/v1/tokens", json={"email": OPERATOR_EMAIL, "password": DEMO_PASSWORD})
    assert without_code.json()["type"] == "two-factor-required"
    code = pyotp.TOTP(DEMO_TOTP_SECRET).now()
    token = await client.post("/api/v1/tokens", json={"email": OPERATOR_EMAIL, "password": DEMO_PASSWORD, "otp": code})
    operator = {"Authorization": f"Bearer {token.json()['token']}"}
    queue = await client.get("/api/v1/campaigns?status=in_review", headers=operator)
    assert [c["slug"] for c in queue.json()["items"]] == [REVIEW_SLUG]
