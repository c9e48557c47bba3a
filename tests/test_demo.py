"""`kindling demo`: a space with its operator, a maker with a live campaign, one in review, one funded and in
fulfillment and one that failed, with a crowd of backers whose pledges agree with every count shown, loaded once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pyotp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import (
    Campaign,
    CampaignImage,
    CampaignUpdate,
    Mail,
    Pledge,
    Product,
    Review,
    Space,
    Tier,
    User,
)
from fulfillment.models import Allocation, Batch, Shipment
from payments import ledger
from payments.models import LedgerEntry, LedgerTransaction, Milestone, Payout
from service.demo import (
    BACKER_EMAIL,
    CROWD_SIZE,
    DEMO_PASSWORD,
    DEMO_TOTP_SECRET,
    FAILED_SLUG,
    FUNDED_BACKERS,
    FUNDED_SLUG,
    LIVE_SLUG,
    MAKER_EMAIL,
    OPERATOR_EMAIL,
    REVIEW_SLUG,
    load_demo,
)
from service.demo_regions import REGIONAL_SPACES
from service.settings import Settings
from tests.pages import CSRF_INPUT, csrf_from, new_browser

COUNTED = (
    User,
    Space,
    Campaign,
    Product,
    Tier,
    CampaignImage,
    CampaignUpdate,
    Review,
    Mail,
    Pledge,
    LedgerTransaction,
    LedgerEntry,
    Batch,
    Allocation,
    Shipment,
    Milestone,
    Payout,
)


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
    # Four campaigns of the Shenzhen space, and one live campaign for each space beyond Shenzhen.
    assert first["campaigns"] == 4 + len(REGIONAL_SPACES)
    assert first["campaign_images"] == 5 and first["campaign_updates"] == 1
    assert first["users"] == 4 + CROWD_SIZE
    async with sessions() as session:
        places = set(await session.execute(select(Space.province, Space.city)))
    assert places == {("Guangdong", city) for city in ("Shenzhen", "Guangzhou", "Foshan", "Dongguan")}

    async with sessions() as session:
        unverified = await session.scalar(
            select(func.count()).select_from(User).where(User.email_verified_at.is_(None))
        )
    assert unverified == 0, "every demo account can submit, review and be paid without a mailed link first"

    async with sessions() as session:
        zones = {email: zone for email, zone in await session.execute(select(User.email, User.time_zone))}
        chinese_readers = set(await session.scalars(select(User.time_zone).where(User.locale == "zh_CN")))
    assert zones[OPERATOR_EMAIL] == zones[MAKER_EMAIL] == "Asia/Shanghai" and zones[BACKER_EMAIL] == "Europe/London"
    assert chinese_readers == {"Asia/Shanghai"} and len(set(zones.values())) == 8, "the crowd lives around the world"

    async with sessions() as session:
        live = await session.scalar(select(Campaign).where(Campaign.slug == LIVE_SLUG))
        in_review = await session.scalar(select(Campaign).where(Campaign.slug == REVIEW_SLUG))
        assert live is not None and in_review is not None
        assert live.status == "live" and live.duration_days == 30 and live.ends_at is not None
        assert in_review.status == "in_review" and in_review.title.startswith("稻田卫士")
        tiers = list(await session.scalars(select(Tier).where(Tier.campaign_id == live.id).order_by(Tier.position)))
    assert [(t.quantity_limit, t.remaining) for t in tiers] == [(200, 3), (None, None), (50, 50)]
    assert tiers[0].translations["zh_CN"]["title"] == "早鸟：一只传感器", "the tiers read in Chinese too"


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
    assert "Matched 1:1 by Chaihuo x.factory up to" in page.text
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


async def test_every_limited_tier_of_the_demo_has_as_many_pledges_as_it_says_are_taken(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions.begin() as session:
        await load_demo(session, settings)
    async with sessions() as session:
        taken = (
            select(func.count())
            .where(Pledge.tier_id == Tier.id, Pledge.status.not_in(("cancelled", "dropped")))
            .scalar_subquery()
        )
        rows = (await session.execute(select(Tier.title, Tier.quantity_limit, Tier.remaining, taken))).all()
        limited = [(title, limit, remaining, count) for title, limit, remaining, count in rows if limit is not None]
        assert len(limited) >= 3
        for title, limit, remaining, count in limited:
            assert limit - remaining == count, title
        live = await session.scalar(select(Campaign).where(Campaign.slug == LIVE_SLUG))
        assert live is not None
        backers = await session.scalar(
            select(func.count()).where(
                Pledge.campaign_id == live.id, Pledge.status == "active", Pledge.is_match.is_(False)
            )
        )
    assert backers == 197


async def test_the_funded_demo_campaign_is_in_fulfillment_with_a_shipped_batch_and_balanced_books(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions.begin() as session:
        await load_demo(session, settings)
    async with sessions() as session:
        campaign = await session.scalar(select(Campaign).where(Campaign.slug == FUNDED_SLUG))
        assert campaign is not None
        assert campaign.status == "fulfilling" and campaign.first_batch_confirmed_at is not None
        statuses = dict(
            (
                await session.execute(
                    select(Pledge.status, func.count()).where(Pledge.campaign_id == campaign.id).group_by(Pledge.status)
                )
            ).all()
        )
        assert statuses == {"collected": FUNDED_BACKERS}
        addressed = await session.scalar(
            select(func.count()).where(Pledge.campaign_id == campaign.id, func.jsonb_typeof(Pledge.address) == "object")
        )
        assert addressed is not None and FUNDED_BACKERS - 30 < addressed < FUNDED_BACKERS

        batches = list(
            await session.scalars(select(Batch).where(Batch.campaign_id == campaign.id).order_by(Batch.number))
        )
        assert [b.status for b in batches[:2]] == ["shipped", "in_production"]
        assert len(batches) >= 3 and {b.status for b in batches[2:]} == {"planned"}
        listed = await session.scalar(select(func.count()).where(Allocation.list_batch_id == batches[0].id))
        tracked = list(
            await session.scalars(select(Shipment.tracking_number).where(Shipment.campaign_id == campaign.id))
        )
        assert listed and len(tracked) == listed and all(tracked) and len(set(tracked)) == listed

        backer_shipment = await session.scalar(
            select(Shipment.tracking_number)
            .join(Pledge, Pledge.id == Shipment.pledge_id)
            .join(User, User.id == Pledge.backer_id)
            .where(User.email == BACKER_EMAIL)
        )
        assert backer_shipment is not None

        sums = (
            await session.execute(
                select(LedgerEntry.currency, func.sum(LedgerEntry.amount))
                .where(LedgerEntry.campaign_id == campaign.id)
                .group_by(LedgerEntry.currency)
            )
        ).all()
        assert [(currency, int(total)) for currency, total in sums] == [("CNY", 0)]
        books = await ledger.campaign_ledger(session, campaign.id)
        paid = await session.scalar(select(func.sum(Pledge.amount)).where(Pledge.campaign_id == campaign.id))
        assert books.collected == paid == books.pledged
        assert books.platform_fee > 0 and books.sponsor_fee > 0 and books.processor_fee > 0 and books.released > 0
        assert (
            books.collected
            - books.refunded
            - books.platform_fee
            - books.sponsor_fee
            - books.processor_fee
            - books.released
            == books.escrow_held
            > 0
        )
        released = list(
            await session.scalars(
                select(Milestone).where(Milestone.campaign_id == campaign.id, Milestone.status == "released")
            )
        )
        assert len(released) == 2 and sum(m.amount or 0 for m in released) == books.released
        payouts = [p.status for p in await session.scalars(select(Payout).where(Payout.campaign_id == campaign.id))]
        assert sorted(payouts) == ["paid", "pending"]


async def test_the_demo_has_a_failed_campaign_and_one_waiting_for_review(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions.begin() as session:
        await load_demo(session, settings)
    async with sessions() as session:
        failed = await session.scalar(select(Campaign).where(Campaign.slug == FAILED_SLUG))
        in_review = await session.scalar(select(Campaign).where(Campaign.slug == REVIEW_SLUG))
        assert failed is not None and in_review is not None
        assert failed.status == "unsuccessful" and failed.closed_at is not None
        statuses = set(await session.scalars(select(Pledge.status).where(Pledge.campaign_id == failed.id)))
        assert statuses == {"cancelled"}
        assert in_review.status == "in_review"


@asynccontextmanager
async def browser_of(client: httpx.AsyncClient, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own on the app, logged in as `email` through the form; the demo's operator and admin answer
    the code step with the demo's published authenticator key, as the README tells a newcomer to."""
    async with new_browser(client) as browser:
        token = await csrf_from(browser, "/login")
        answer = await browser.post("/login", data={"csrf_token": token, "email": email, "password": DEMO_PASSWORD})
        if answer.status_code == 200 and 'action="/login/code"' in answer.text:
            code = pyotp.TOTP(DEMO_TOTP_SECRET).now()
            step = CSRF_INPUT.search(answer.text)
            assert step is not None
            answer = await browser.post("/login/code", data={"csrf_token": step.group(1), "code": code})
        assert answer.status_code == 303, answer.text
        yield browser


async def test_the_demo_shows_fulfillment_to_its_maker_a_tracking_number_to_its_backer_and_a_review_to_its_operator(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions.begin() as session:
        await load_demo(session, settings)
    async with sessions() as session:
        tracking, pledge_id = (
            await session.execute(
                select(Shipment.tracking_number, Pledge.id)
                .join(Pledge, Pledge.id == Shipment.pledge_id)
                .join(User, User.id == Pledge.backer_id)
                .where(User.email == BACKER_EMAIL)
            )
        ).one()

    async with browser_of(client, MAKER_EMAIL) as maker:
        fulfillment = await maker.get(f"/maker/campaigns/{FUNDED_SLUG}/fulfillment")
    assert fulfillment.status_code == 200
    assert "Lumen" in fulfillment.text

    async with browser_of(client, BACKER_EMAIL) as backer:
        pledge = await backer.get(f"/me/pledges/{pledge_id}")
    assert pledge.status_code == 200 and tracking in pledge.text

    async with browser_of(client, OPERATOR_EMAIL) as operator:
        review = await operator.get(f"/operator/campaigns/{REVIEW_SLUG}")
        escrow = await operator.get(f"/campaigns/{FUNDED_SLUG}/escrow")
    assert review.status_code == 200 and "稻田卫士" in review.text
    assert 'name="checklist-prototype"' in review.text
    assert escrow.status_code == 200
    failed = await client.get(f"/campaigns/{FAILED_SLUG}")
    assert failed.status_code == 200
