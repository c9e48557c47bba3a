"""The public delivery record: a maker's and a space's funded campaigns, delivered on time, late (by how many
months), not yet (due or overdue) and never, computed from batches, tiers and campaign events."""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, CampaignEvent
from fulfillment.delivery_record import (
    DeliveryRecord,
    clock_changes_record_at,
    maker_delivery_record,
    space_campaign_deliveries,
    space_delivery_record,
)
from fulfillment.models import Batch
from tests.factories import insert_campaign, insert_space, insert_tier, insert_user
from tests.test_page_cache import listening, visitor


def page_text(html: str) -> str:
    """The HTML without its tags: what a reader sees, in one run."""
    return re.sub(r"<[^>]+>", "", html)


def month(now: datetime, offset: int) -> str:
    """'YYYY-MM' of the month `offset` months from `now`'s."""
    index = now.year * 12 + now.month - 1 + offset
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass
class Record:
    maker_id: uuid.UUID
    maker_name: str
    maker_email: str
    space_id: uuid.UUID
    space_slug: str
    campaigns: dict[str, Campaign]


async def _campaign(
    session: AsyncSession,
    maker_id: uuid.UUID,
    space_id: uuid.UUID,
    title: str,
    *,
    status: str,
    promised: list[str],
    batches: list[datetime | None],
) -> Campaign:
    """A campaign whose tiers promise `promised` months and whose batches shipped at the given times (None: confirmed,
    not shipped yet)."""
    campaign = await insert_campaign(session, maker_id=maker_id, space_id=space_id, status=status, title=title)
    for position, estimated in enumerate(promised):
        tier = await insert_tier(session, campaign, {"BOARD": 1}, title=f"Tier {position}")
        tier.estimated_delivery = estimated
    for number, shipped_at in enumerate(batches, start=1):
        session.add(
            Batch(
                campaign_id=campaign.id,
                number=number,
                status="shipped" if shipped_at else "confirmed",
                confirmed_at=shipped_at or datetime.now().astimezone(),
                shipped_at=shipped_at,
            )
        )
    await session.flush()
    return campaign


async def arrange_record(sessions: async_sessionmaker[AsyncSession]) -> Record:
    """One maker in one space: two campaigns delivered on time, one late by 2 months, one not yet due, one overdue by
    3 months, one suspended after funding; plus campaigns that were never funded, which the record leaves out."""
    async with sessions.begin() as session:
        now: datetime = await session.scalar(text("SELECT now()"))
        maker = await insert_user(session, "Ada Maker")
        space = await insert_space(session)

        async def made(title: str, *, status: str, promised: list[str], batches: list[datetime | None]) -> Campaign:
            return await _campaign(
                session, maker.id, space.id, title, status=status, promised=promised, batches=batches
            )

        campaigns = {
            "on_time": await made(
                "Ahead of time", status="fulfilled", promised=[month(now, 0), month(now, 1)], batches=[now, now]
            ),
            "on_time_this_month": await made(
                "Just in time", status="fulfilling", promised=[month(now, 0)], batches=[now]
            ),
            "late": await made("Two months late", status="fulfilled", promised=[month(now, -2)], batches=[now]),
            "not_yet_due": await made("Not yet due", status="fulfilling", promised=[month(now, 3)], batches=[None]),
            "overdue": await made(
                "Overdue", status="fulfilling", promised=[month(now, -4), month(now, -3)], batches=[now, None]
            ),
            "suspended": await made("Suspended", status="suspended", promised=[month(now, 2)], batches=[]),
            "live": await made("Still live", status="live", promised=[month(now, -5)], batches=[]),
            "suspended_live": await made("Stopped early", status="suspended", promised=[month(now, -5)], batches=[]),
        }
        session.add_all(
            [
                CampaignEvent(
                    campaign_id=campaigns["suspended"].id, action="suspend", from_status="funded", to_status="suspended"
                ),
                CampaignEvent(
                    campaign_id=campaigns["suspended_live"].id,
                    action="suspend",
                    from_status="live",
                    to_status="suspended",
                ),
            ]
        )
        elsewhere = await insert_space(session)
        await _campaign(
            session, maker.id, elsewhere.id, "Elsewhere", status="funded", promised=[month(now, -1)], batches=[]
        )
        return Record(maker.id, maker.name, maker.email, space.id, space.slug, campaigns)


SPACE_RECORD = DeliveryRecord(
    campaigns_funded=6,
    delivered_on_time=2,
    delivered_late=1,
    months_late=[2],
    not_yet_due=1,
    overdue=1,
    months_overdue=[3],
    never_delivered=1,
)
# The maker's record also holds their campaign in another space: funded, promised last month, nothing shipped.
MAKER_RECORD = DeliveryRecord(
    campaigns_funded=7,
    delivered_on_time=2,
    delivered_late=1,
    months_late=[2],
    not_yet_due=1,
    overdue=2,
    months_overdue=[1, 3],
    never_delivered=1,
)


async def test_the_record_counts_each_funded_campaign_once_by_how_it_was_delivered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    arranged = await arrange_record(sessions)
    async with sessions.begin() as session:
        assert await space_delivery_record(session, arranged.space_id) == SPACE_RECORD
        assert await maker_delivery_record(session, arranged.maker_id) == MAKER_RECORD
        outcomes = await space_campaign_deliveries(session, arranged.space_id)
    by_name = {name: outcomes.get(campaign.id) for name, campaign in arranged.campaigns.items()}
    assert {name: (o.outcome, o.months) if o else None for name, o in by_name.items()} == {
        "on_time": ("on_time", 0),
        "on_time_this_month": ("on_time", 0),
        "late": ("late", 2),
        "not_yet_due": ("not_yet_due", 0),
        "overdue": ("overdue", 3),
        "suspended": ("never", 0),
        "live": None,
        "suspended_live": None,
    }


async def test_a_maker_and_a_space_with_nothing_funded_have_an_empty_record(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        maker = await insert_user(session, "New Maker")
        space = await insert_space(session)
        assert await maker_delivery_record(session, maker.id) == DeliveryRecord()
        assert await space_delivery_record(session, space.id) == DeliveryRecord()


SPACE_LINE = (
    "6 funded · 2 delivered on time · 1 late by 2 months · 1 not yet due · 1 overdue by 3 months"
    " · 1 never delivered (suspended)"
)
MAKER_LINE = (
    "7 funded · 2 delivered on time · 1 late by 2 months · 1 not yet due · 1 overdue by 1 month"
    " · 1 overdue by 3 months · 1 never delivered (suspended)"
)


async def test_the_space_and_maker_api_give_the_record(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    arranged = await arrange_record(sessions)
    space = await client.get(f"/api/v1/spaces/{arranged.space_id}")
    assert space.status_code == 200, space.text
    assert space.json()["delivery_record"] == asdict(SPACE_RECORD)

    maker = await client.get(f"/api/v1/makers/{arranged.maker_id}")
    assert maker.status_code == 200, maker.text
    body = maker.json()
    assert body["name"] == arranged.maker_name
    assert body["delivery_record"] == asdict(MAKER_RECORD)
    assert arranged.maker_email not in maker.text
    titles = {campaign["title"] for campaign in body["campaigns"]}
    assert titles == {c.title for c in arranged.campaigns.values()} | {"Elsewhere"}


async def test_only_makers_of_a_public_campaign_have_a_profile(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        backer = await insert_user(session, "Just Backer")
        drafter = await insert_user(session, "Drafter")
        await insert_campaign(session, maker_id=drafter.id, status="draft")
    for ref in (backer.id, drafter.id, uuid.uuid4(), "not-an-id"):
        assert (await client.get(f"/api/v1/makers/{ref}")).status_code == 404
        assert (await client.get(f"/makers/{ref}")).status_code == 404


async def test_the_maker_page_shows_the_name_the_campaigns_and_the_record_but_no_email(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    arranged = await arrange_record(sessions)
    page = await client.get(f"/makers/{arranged.maker_id}")
    assert page.status_code == 200
    assert arranged.maker_name in page.text
    assert MAKER_LINE in page_text(page.text)
    assert "Two months late" in page.text
    assert arranged.maker_email not in page.text
    assert "@" not in page.text.split("<main", 1)[-1].split("</main>", 1)[0]

    chinese = (await client.get(f"/makers/{arranged.maker_id}?lang=zh_CN")).text
    assert "交付记录" in chinese
    assert "7 个成功筹款" in chinese
    assert "1 个已逾期 3 个月" in chinese


async def test_the_space_page_shows_its_record_and_each_sponsored_campaign_with_its_state(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    arranged = await arrange_record(sessions)
    page = (await client.get(f"/spaces/{arranged.space_slug}")).text
    assert SPACE_LINE in page_text(page)
    listed = page.split('data-list="sponsored"', 1)[1].split("</ul>", 1)[0]
    for title, words in (
        ("Ahead of time", "Delivered on time"),
        ("Two months late", "Delivered 2 months late"),
        ("Not yet due", "Delivery not yet due"),
        ("Overdue", "Delivery overdue by 3 months"),
        ("Suspended", "Never delivered (suspended)"),
        ("Still live", None),
    ):
        item = listed.split(f">{title}</a>", 1)[1].split("</li>", 1)[0]
        assert (words in item) if words else ("data-delivery" not in item), (title, item)
    assert "Elsewhere" not in listed

    chinese = (await client.get(f"/spaces/{arranged.space_slug}?lang=zh_CN")).text
    assert "延期 2 个月交付" in chinese
    assert "交付已逾期 3 个月" in chinese


async def test_the_campaign_page_shows_the_makers_and_the_spaces_record_beside_the_badge(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    arranged = await arrange_record(sessions)
    page = (await client.get(f"/campaigns/{arranged.campaigns['late'].slug}")).text
    assert f'By <a href="/makers/{arranged.maker_id}">Ada Maker</a>' in page
    record = page.split('class="delivery-record', 1)[1].split("</section>", 1)[0]
    assert f'href="/makers/{arranged.maker_id}">Maker</a>:' in record
    assert f'href="/spaces/{arranged.space_slug}">Makerspace</a>:' in record
    assert f"Maker: {MAKER_LINE}" in page_text(record)
    assert f"Makerspace: {SPACE_LINE}" in page_text(record)


async def test_the_openapi_document_describes_the_maker_profile_and_the_spaces_record(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    maker = document["paths"]["/api/v1/makers/{maker_id}"]["get"]
    space = document["paths"]["/api/v1/spaces/{space_id}"]["get"]
    assert {"200", "404"} <= set(maker["responses"]) and {"200", "404"} <= set(space["responses"])
    schemas = document["components"]["schemas"]
    assert "email" not in schemas["MakerOut"]["properties"]
    assert "delivery_record" in schemas["MakerOut"]["properties"]
    assert "delivery_record" in schemas["SpaceWithRecordOut"]["properties"]


async def test_the_kept_campaign_page_shows_a_record_changed_by_another_campaign_at_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    arranged = await arrange_record(sessions)
    cache = await listening(client)
    path = f"/campaigns/{arranged.campaigns['late'].slug}"
    async with visitor(client) as browser:
        first = page_text((await browser.get(path)).text)
        assert "2 delivered on time · 1 late by 2 months · 1 not yet due" in first
        assert len(cache) == 1

        # The campaign not yet due ships its batch: another campaign of the same maker and space.
        async with sessions.begin() as session:
            await session.execute(
                text("UPDATE batches SET status = 'shipped', shipped_at = now() WHERE campaign_id = :id"),
                {"id": arranged.campaigns["not_yet_due"].id},
            )
        shipped = page_text((await browser.get(path)).text)
        assert "3 delivered on time · 1 late by 2 months · 1 overdue by 1 month" in shipped
        assert "not yet due" not in shipped

        # A live campaign of the maker is funded: it counts from now on.
        async with sessions.begin() as session:
            await session.execute(
                text("UPDATE campaigns SET status = 'funded' WHERE id = :id"), {"id": arranged.campaigns["live"].id}
            )
        funded = page_text((await browser.get(path)).text)
        assert "Maker: 8 funded" in funded and "Makerspace: 7 funded" in funded
        assert "1 overdue by 5 months" in funded


def test_a_record_with_a_campaign_still_to_deliver_changes_at_the_turn_of_the_month() -> None:
    now = datetime(2026, 12, 7, 3, 45, tzinfo=UTC)
    assert clock_changes_record_at(DeliveryRecord(campaigns_funded=1, not_yet_due=1), now) == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    assert clock_changes_record_at(
        DeliveryRecord(campaigns_funded=1, overdue=1, months_overdue=[2]), datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
    ) == datetime(2026, 4, 1, tzinfo=UTC)
    assert clock_changes_record_at(SPACE_RECORD, now) == datetime(2027, 1, 1, tzinfo=UTC)
    delivered = DeliveryRecord(campaigns_funded=2, delivered_on_time=1, delivered_late=1, months_late=[1])
    assert clock_changes_record_at(delivered, now) is None
