"""Demo data for `kindling demo` and the first `kindling dev`: a makerspace, its operator, a maker, a backer, an admin;
spaces in three more cities (service/demo_regions.py).

Every part finds what it made before and makes only what is missing, so loading twice changes nothing. A new part
(campaigns, pledges) is one more function taking the session, the settings and the `Demo` built so far, called
from load_demo.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns import accounts, catalog, matching, review, service, spaces, two_factor, updates
from campaigns.campaign_schemas import (
    CampaignCreate,
    CampaignPatch,
    CampaignTranslation,
    Checklist,
    ProductCreate,
    ProductTranslation,
    ReviewCreate,
    ShippingRate,
    TierCreate,
    TierItem,
    TierTranslation,
    UpdateCreate,
)
from campaigns.images import add_campaign_image, image_url
from campaigns.models import Campaign, Pledge, Space, Tier, User, new_id
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import PledgeChoice, price_pledge
from campaigns.pledges.service import item_rows
from fulfillment import service as fulfillment
from fulfillment import shipments
from fulfillment.models import Allocation, Batch
from payments import closing, ledger, milestones
from service import demo_pictures
from service.settings import Settings

# Every demo account has this password (documented in the README and printed by `kindling demo`).
DEMO_PASSWORD = "kindling-demo"
# The demo's admin and operator have two-factor on with this key (documented in the README): add it to an
# authenticator app, or print the current code with `python -c "import pyotp; print(pyotp.TOTP('<key>').now())"`.
DEMO_TOTP_SECRET = "KINDLINGDEMOKINDLINGDEMO"
ADMIN_EMAIL = "admin@kindling.localhost"
# The space, its operator and the maker work in Shenzhen, on China's one clock.
SHENZHEN = "Asia/Shanghai"
OPERATOR_EMAIL = "operator@kindling.localhost"
MAKER_EMAIL = "maker@kindling.localhost"
BACKER_EMAIL = "backer@kindling.localhost"
SPACE_SLUG = "chaihuo-x-factory"


@dataclass
class Demo:
    admin: User
    operator: User
    maker: User
    backer: User
    space: Space


async def not_the_demos(session: AsyncSession) -> str | None:
    """Why the demo must not be loaded into this database without being told to, or None when it may.

    The demo adds accounts whose password is published (and makes an admin of admin@kindling.localhost, whatever its
    password), so it loads only into a database with no account at all, or into one it made itself: one whose
    admin@kindling.localhost is a platform admin. Nobody can make themselves an admin, and `.localhost` addresses
    belong to no one (RFC 6761), so a database with other accounts and no such admin is someone's real data.
    """
    users = await session.scalar(select(func.count()).select_from(User)) or 0
    if not users:
        return None
    demo_admin = await session.scalar(select(User.is_admin).where(User.email == ADMIN_EMAIL))
    if demo_admin:
        return None
    campaigns = await session.scalar(select(func.count()).select_from(Campaign)) or 0
    return (
        f"the database holds {users} account(s) and {campaigns} campaign(s) and was not made by `kindling demo` (it "
        f"has no demo admin {ADMIN_EMAIL}); the demo would add accounts whose password is published. "
        "Point DATABASE_URL at an empty database, or pass --yes to load the demo into this one anyway"
    )


async def load_demo(session: AsyncSession, settings: Settings) -> Demo:
    demo = await demo_people_and_space(session)
    # Later parts go here, each `await demo_<part>(session, settings, demo)`.
    crowd = await demo_crowd(session)
    # Beyond Shenzhen (and every space's province and fund, before any collection is booked).
    from service.demo_regions import demo_regional_spaces

    await demo_regional_spaces(session, settings, demo, crowd)
    await demo_live_campaign(session, settings, demo, crowd)
    await demo_campaign_in_review(session, settings, demo)
    await demo_funded_campaign(session, settings, demo, crowd)
    await demo_failed_campaign(session, settings, demo, crowd)
    return demo


async def demo_people_and_space(session: AsyncSession) -> Demo:
    admin, _created = await accounts.create_admin(session, email=ADMIN_EMAIL, password=DEMO_PASSWORD)
    operator = await _ensure_user(session, OPERATOR_EMAIL, "Li Wei", locale="zh_CN", time_zone=SHENZHEN)
    for holder in (admin, operator):
        await two_factor.enrol_with_known_secret(session, holder, DEMO_TOTP_SECRET)
    maker = await _ensure_user(session, MAKER_EMAIL, "Ada Maker", time_zone=SHENZHEN)
    backer = await _ensure_user(session, BACKER_EMAIL, "Ben Backer", time_zone="Europe/London")
    space = await session.scalar(select(Space).where(Space.slug == SPACE_SLUG))
    if space is None:
        space = await spaces.create_space(
            session,
            admin,
            client_address=None,
            name="Chaihuo x.factory",
            slug=SPACE_SLUG,
            city="Shenzhen",
            country="CN",
            sponsor_fee_bps=300,
            description=(
                "Seeed Studio's makerspace in Shenzhen: prototyping benches, and the factories next door "
                "for the first production batch."
            ),
        )
    await spaces.add_operator(session, admin, space, OPERATOR_EMAIL, client_address=None)
    return Demo(admin=admin, operator=operator, maker=maker, backer=backer, space=space)


async def _ensure_user(
    session: AsyncSession, email: str, name: str, *, locale: str = "en", time_zone: str = "UTC"
) -> User:
    user = await session.scalar(select(User).where(User.email == email))
    if user is None:
        user = await accounts.register_user(
            session, email=email, password=DEMO_PASSWORD, name=name, locale=locale, time_zone=time_zone, verified=True
        )
    return user


# Campaigns: one live (with images, three tiers, one nearly sold out, an update) and one in review, so that a new
# user sees every page of the flow at once. Each goes through the same service functions as the pages and the API.

LIVE_SLUG = "loam-soil-sensor"
REVIEW_SLUG = "paddy-guard"

LOAM_STORY = """\
## Water when the soil asks for it

Loam is a soil moisture sensor the size of a plant label. Push it into a pot, a raised bed or a field row; it
measures how wet the soil is every ten minutes and tells you, by LoRa radio, when a plant actually needs water.

{picture}

## What is in the box

- the **Loam sensor**: a capacitive probe (no exposed metal to corrode), a temperature sensor and a coin cell
  that lasts two growing seasons;
- the **Loam gateway** (in the garden and farm kits): receives up to 200 sensors over 2 km and puts their readings
  on your own network, with no cloud account needed;
- stainless steel probe tips for heavy clay.

## Open, all the way down

The schematics, the board layout, the firmware and the gateway software are published under open licences
(CERN-OHL-S and MIT). Every reading stays on your network unless you choose to send it somewhere.

## Where the money goes

1. Tooling for the waterproof enclosure: 38 %
2. The first production run of 2,000 sensors at our partner factory in Bao'an: 46 %
3. CE, FCC and SRRC certification: 11 %
4. Packaging and shipping supplies: 5 %

## Timeline

| month | milestone |
|---|---|
| 2026-12 | enclosure tooling signed off |
| 2027-01 | pilot run of 100, field-tested at Chaihuo x.factory |
| 2027-03 | early birds ship |
| 2027-05 | every kit shipped |
"""

LOAM_REVIEW_NOTES = (
    "We ran three hand-built prototypes on the x.factory roof garden for six weeks: the readings tracked our "
    "reference tensiometer within 4 %. The bill of materials is costed at the 500-unit quote from our partner "
    "factory in Bao'an (quote seen, dated last month). CE and FCC testing is booked with a Shenzhen lab; SRRC for "
    "the gateway is in progress."
)

LOAM_UPDATE = """\
Twenty sensors came off the pilot line this week. We potted them into the x.factory roof garden next to last
season's prototypes, and the two agree within 2 %.

Next: the enclosure tooling review with the factory on Friday.
"""

PADDY_STORY = """\
## 让稻田自己报告水位

稻田卫士是一只太阳能供电的小浮标。把它放进田里，它每十分钟测一次水位和水温，通过 LoRa 发送到村里的网关，
水位太低或太高时在手机上提醒你。种稻的人不必再每天清早下田查看。

## 我们已经做到的

- 在广东清远的两块试验田里连续运行了一整季（120 天），没有一次掉线；
- 水位误差小于 5 毫米，水温误差小于 0.3 °C；
- 一块 2 瓦的太阳能板足够让它在阴雨天连续工作两周。

## 筹到的钱用来做什么

1. 注塑外壳的模具；
2. 第一批 500 只浮标的生产；
3. 无线电型号核准（SRRC）。

硬件设计和固件都以开源协议发布。
"""


async def demo_live_campaign(session: AsyncSession, settings: Settings, demo: Demo, crowd: Sequence[User]) -> Campaign:
    """Loam, a soil moisture sensor: live, with a cover and a gallery, three tiers and a public update."""
    found = await session.scalar(select(Campaign).where(Campaign.slug == LIVE_SLUG))
    if found is not None:
        return found
    maker = demo.maker
    campaign = await service.create_campaign(
        session,
        maker,
        CampaignCreate(
            title="Loam: the open-source soil moisture sensor",
            summary="A sensor the size of a plant label that tells you, over LoRa, when your plants need water. "
            "Open hardware, no cloud account.",
            description=LOAM_STORY.format(picture=""),
            language="en",
            translations={
                "zh_CN": CampaignTranslation(
                    title="Loam：开源土壤湿度传感器",
                    summary="一个植物标签大小的传感器，通过 LoRa 告诉你植物什么时候需要浇水。开源硬件，无需云账号。",
                )
            },
            currency="CNY",
            goal=15_000_000,
            space_id=demo.space.id,
            duration_days=30,
        ),
    )
    await _use_slug(session, campaign, LIVE_SLUG)
    for product in (
        ProductCreate(
            sku="LOAM-1",
            name="Loam sensor",
            translations={"zh_CN": ProductTranslation(name="Loam 土壤传感器")},
            weight_grams=45,
            unit_cost=3_850,
            batch_size=500,
            overage_bps=300,
        ),
        ProductCreate(
            sku="LOAM-GW",
            name="Loam LoRa gateway",
            translations={"zh_CN": ProductTranslation(name="Loam LoRa 网关")},
            weight_grams=160,
            unit_cost=14_500,
            batch_size=200,
            overage_bps=200,
        ),
        ProductCreate(
            sku="LOAM-TIPS", name="Stainless probe tips (pair)", weight_grams=20, unit_cost=600, batch_size=1000
        ),
    ):
        await catalog.add_product(session, campaign.id, maker, product)
    early_bird = await catalog.add_tier(
        session,
        campaign.id,
        maker,
        TierCreate(
            title="Early bird: one sensor",
            description="One Loam sensor at the early price, for the first 200 backers.",
            translations={
                "zh_CN": TierTranslation(
                    title="早鸟：一只传感器", description="前 200 位支持者以早鸟价获得一只 Loam 传感器。"
                )
            },
            price=14_900,
            quantity_limit=200,
            items=[TierItem(sku="LOAM-1", quantity=1)],
            shipping=[ShippingRate(country="CN", fee=1_000), ShippingRate(country="*", fee=6_000)],
            estimated_delivery=_delivery(30, months_later=1),
        ),
    )
    await catalog.add_tier(
        session,
        campaign.id,
        maker,
        TierCreate(
            title="Garden kit: three sensors and a gateway",
            description="Everything a balcony or a vegetable garden needs. **Free shipping in China.**",
            translations={
                "zh_CN": TierTranslation(
                    title="花园套装：三只传感器和一个网关", description="阳台或菜园所需的一切。**中国境内包邮。**"
                )
            },
            price=69_900,
            items=[
                TierItem(sku="LOAM-1", quantity=3),
                TierItem(sku="LOAM-GW", quantity=1),
                TierItem(sku="LOAM-TIPS", quantity=1),
            ],
            shipping=[ShippingRate(country="CN", fee=0), ShippingRate(country="*", fee=9_000)],
            estimated_delivery=_delivery(30, months_later=2),
        ),
    )
    await catalog.add_tier(
        session,
        campaign.id,
        maker,
        TierCreate(
            title="Farm pack: ten sensors and two gateways",
            description="For a greenhouse or a few field rows. Limited to what the first production run can make.",
            price=199_900,
            quantity_limit=50,
            items=[TierItem(sku="LOAM-1", quantity=10), TierItem(sku="LOAM-GW", quantity=2)],
            shipping=[ShippingRate(country="CN", fee=3_000), ShippingRate(country="*", fee=25_000)],
            estimated_delivery=_delivery(30, months_later=3),
        ),
    )
    media = settings.media_dir
    await add_campaign_image(
        session, campaign.id, maker, data=demo_pictures.loam_cover(), role="cover", media_dir=media
    )
    gallery = [
        await add_campaign_image(session, campaign.id, maker, data=draw(), role="gallery", media_dir=media)
        for draw in (demo_pictures.loam_board, demo_pictures.loam_pot, demo_pictures.loam_chart)
    ]
    picture = f"![The Loam board on a cutting mat]({image_url(gallery[0])})"
    await service.update_campaign(
        session, campaign.id, maker, CampaignPatch(description=LOAM_STORY.format(picture=picture))
    )
    await service.submit_campaign(session, campaign.id, maker, base_url=settings.base_url)
    await review.review_campaign(
        session,
        campaign.id,
        demo.operator,
        ReviewCreate(
            decision="approve",
            notes=LOAM_REVIEW_NOTES,
            language="en",
            checklist=Checklist(prototype=True, bill_of_materials=True, manufacturing_quote=True, certifications=True),
        ),
        base_url=settings.base_url,
        client_address=None,
    )
    await service.launch_campaign(
        session, campaign.id, maker, day_seconds=settings.day_seconds, base_url=settings.base_url
    )
    # Nearly sold out: 197 of the crowd took the early bird, so the tier shows 3 of 200 left and the campaign
    # counts 197 backers. There is no card at demo time: their pledges are active with no card saved, which is
    # harmless here (the goal is far off, so at the deadline they are cancelled, never charged).
    await _bulk_pledges(session, campaign, early_bird, crowd[:197], status="active")
    # The space matches the backers 1:1 up to CNY 20,000, its card (like the crowd's) not saved at demo time.
    match = await matching.reserve_match(
        session, campaign.id, demo.operator, cap=2_000_000, sponsor_name=demo.space.name, client_address=None
    )
    await session.execute(update(Pledge).where(Pledge.id == match.id).values(status="active", confirmed_at=func.now()))
    await updates.post_update(
        session,
        campaign.id,
        maker,
        UpdateCreate(title="The pilot run is on the bench", body=LOAM_UPDATE, visibility="public"),
    )
    return campaign


async def demo_campaign_in_review(session: AsyncSession, settings: Settings, demo: Demo) -> Campaign:
    """稻田卫士, a paddy-field water buoy, written in Chinese and waiting in the operator's review queue."""
    found = await session.scalar(select(Campaign).where(Campaign.slug == REVIEW_SLUG))
    if found is not None:
        return found
    maker = demo.maker
    campaign = await service.create_campaign(
        session,
        maker,
        CampaignCreate(
            title="稻田卫士：开源稻田水位与水温监测浮标",
            summary="太阳能供电的小浮标，每十分钟通过 LoRa 上报稻田的水位和水温，帮小农户省下每天巡田的时间。",
            description=PADDY_STORY,
            language="zh_CN",
            currency="CNY",
            goal=8_000_000,
            space_id=demo.space.id,
            duration_days=45,
        ),
    )
    await _use_slug(session, campaign, REVIEW_SLUG)
    await catalog.add_product(
        session,
        campaign.id,
        maker,
        ProductCreate(sku="PADDY-1", name="稻田卫士浮标", weight_grams=420, unit_cost=12_800, batch_size=500),
    )
    await catalog.add_tier(
        session,
        campaign.id,
        maker,
        TierCreate(
            title="一只浮标",
            description="一只稻田卫士浮标，含充电线。",
            price=29_900,
            items=[TierItem(sku="PADDY-1", quantity=1)],
            shipping=[ShippingRate(country="CN", fee=1_500)],
            estimated_delivery=_delivery(45, months_later=2),
        ),
    )
    await catalog.add_tier(
        session,
        campaign.id,
        maker,
        TierCreate(
            title="合作社套装：五只浮标",
            description="覆盖约 20 亩稻田。",
            price=139_900,
            quantity_limit=100,
            items=[TierItem(sku="PADDY-1", quantity=5)],
            shipping=[ShippingRate(country="CN", fee=0)],
            estimated_delivery=_delivery(45, months_later=2),
        ),
    )
    await add_campaign_image(
        session, campaign.id, maker, data=demo_pictures.paddy_cover(), role="cover", media_dir=settings.media_dir
    )
    await service.submit_campaign(session, campaign.id, maker, base_url=settings.base_url)
    return campaign


async def _use_slug(session: AsyncSession, campaign: Campaign, slug: str) -> None:
    # The demo's campaigns are found again by a fixed slug; a title's own slug may differ (a Chinese title has none).
    campaign.slug = slug
    await session.flush()


# The crowd: demo backers, so that every campaign has the backers its pages count. One password is hashed (argon2
# takes a while on purpose) and its hash shared by the rest, inserted at once.

CROWD_SIZE = 260
_GIVEN = ("Mia", "Jonas", "Priya", "Tomás", "Aiko", "Noah", "Fatima", "Lars", "Chloé", "Omar", "Sofia", "Kenji")
_FAMILY = ("Schmidt", "Okafor", "Rossi", "Nguyen", "Silva", "Berg", "Novak", "Haddad", "Kowalski", "Moreau")
# Where the English-reading crowd keeps its clocks (the Chinese-reading third is in China's one zone).
_ZONES = ("Europe/Berlin", "America/Los_Angeles", "Asia/Tokyo", "Europe/Rome", "America/New_York", "Europe/London")
_ZH_NAMES = ("王芳", "李娜", "张伟", "刘洋", "陈静", "杨磊", "赵敏", "黄涛", "周婷", "吴强", "徐丽", "孙浩")


def crowd_email(n: int) -> str:
    return f"backer{n:03d}@kindling.localhost"


def _crowd_member(n: int) -> tuple[str, str, str]:
    """The name, language and time zone of crowd member `n`: every third one reads Chinese and lives in China."""
    if n % 3 == 0:
        return _ZH_NAMES[n // 3 % len(_ZH_NAMES)], "zh_CN", SHENZHEN
    return f"{_GIVEN[n % len(_GIVEN)]} {_FAMILY[n * 7 % len(_FAMILY)]}", "en", _ZONES[n // 3 % len(_ZONES)]


async def demo_crowd(session: AsyncSession) -> list[User]:
    name, locale, time_zone = _crowd_member(1)
    first = await _ensure_user(session, crowd_email(1), name, locale=locale, time_zone=time_zone)
    rows = []
    for n in range(2, CROWD_SIZE + 1):
        name, locale, time_zone = _crowd_member(n)
        rows.append(
            {
                "email": crowd_email(n),
                "name": name,
                "locale": locale,
                "time_zone": time_zone,
                "password_hash": first.password_hash,
                "email_verified_at": first.email_verified_at,
            }
        )
    await session.execute(pg_insert(User).values(rows).on_conflict_do_nothing(index_elements=[User.email]))
    emails = [crowd_email(n) for n in range(1, CROWD_SIZE + 1)]
    return list(await session.scalars(select(User).where(User.email.in_(emails)).order_by(User.email)))


# Where the crowd lives: (street, city, region, postal code, country); a Chinese street is written in Chinese.
_PLACES = (
    ("深南大道 6001 号", "深圳市", "广东省", "518000", "CN"),
    ("Torstraße 112", "Berlin", "", "10119", "DE"),
    ("88 Market Street", "San Francisco", "CA", "94105", "US"),
    ("漕溪北路 398 号", "上海市", "上海市", "200030", "CN"),
    ("2-11-3 Meguro", "Tokyo", "", "153-0063", "JP"),
    ("Via Po 21", "Torino", "TO", "10124", "IT"),
    ("中关村大街 27 号", "北京市", "北京市", "100080", "CN"),
)


def _address(backer: User, n: int) -> dict[str, str]:
    street, city, region, postal_code, country = _PLACES[n % len(_PLACES)]
    return {
        "name": backer.name,
        "line1": street,
        "line2": "",
        "city": city,
        "region": region,
        "postal_code": postal_code,
        "country": country,
        "phone": "",
    }


async def _bulk_pledges(
    session: AsyncSession,
    campaign: Campaign,
    tier: Tier,
    backers: Sequence[User],
    *,
    status: str,
    addressed: Callable[[int], bool] = lambda n: False,
    days_ago: tuple[float, float] = (0, 0),
) -> list[tuple[uuid.UUID, int]]:
    """One pledge on `tier` per backer, in one statement, priced as a real pledge is (tier, shipping to the
    backer's country), with the tier's slots taken. Returns (pledge id, amount) in arrival order.

    Real pledges need a card saved at Stripe, and there is none at demo time: `active` ones have no card (only a
    campaign that fails holds them), `collected` ones were charged before the demo began. They arrive between
    `days_ago` (from, to), most of them early, as backers of a new campaign do."""
    first, last = days_ago
    rows: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for n, backer in enumerate(backers):
        arrived = func.now() - timedelta(days=first - (first - last) * (n / len(backers)) ** 2)
        address = _address(backer, n)
        terms = price_pledge(campaign.currency, tier, PledgeChoice(tier.id, 0, address["country"]))
        pledge_id = new_id()
        lines.extend(item_rows(pledge_id, terms))
        rows.append(
            {
                "id": pledge_id,
                "campaign_id": campaign.id,
                "backer_id": backer.id,
                "tier_id": tier.id,
                "status": status,
                "amount": terms.amount,
                "shipping_fee": terms.shipping_fee,
                "currency": campaign.currency,
                "shipping_country": address["country"],
                "address": address if addressed(n) else None,
                "created_at": arrived,
                "confirmed_at": arrived,
                "charged_at": func.now() if status == "collected" else None,
            }
        )
    pledged = list(await session.execute(pg_insert(Pledge).values(rows).returning(Pledge.id, Pledge.amount)))
    await session.execute(pg_insert(PledgeItem), lines)
    if tier.quantity_limit is not None:
        await session.execute(update(Tier).where(Tier.id == tier.id).values(remaining=Tier.remaining - len(rows)))
    return [(pledge_id, amount) for pledge_id, amount in pledged]


async def _close_now(session: AsyncSession, settings: Settings, campaign: Campaign, days_ago: int) -> str:
    """Move a live campaign's deadline `days_ago` into the past and close it, as the sweep does at the deadline."""
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(
            launched_at=func.now() - timedelta(days=days_ago + campaign.duration_days),
            ends_at=func.now() - timedelta(days=days_ago),
        )
    )
    locked = await closing.lock_campaign(session, campaign.id)
    assert locked is not None
    return await closing.close_campaign(
        session, locked, platform_fee_bps=settings.platform_fee_bps, day_seconds=settings.day_seconds
    )


async def _approve_and_launch(session: AsyncSession, settings: Settings, demo: Demo, campaign: Campaign) -> None:
    await service.submit_campaign(session, campaign.id, demo.maker, base_url=settings.base_url)
    await review.review_campaign(
        session,
        campaign.id,
        demo.operator,
        ReviewCreate(
            decision="approve",
            notes="Prototype seen working at the space; the factory quote and the bill of materials agree.",
            language="en",
            checklist=Checklist(prototype=True, bill_of_materials=True, manufacturing_quote=True, certifications=True),
        ),
        base_url=settings.base_url,
        client_address=None,
    )
    await service.launch_campaign(
        session, campaign.id, demo.maker, day_seconds=settings.day_seconds, base_url=settings.base_url
    )


FUNDED_SLUG = "lumen-solar-lamp"
FAILED_SLUG = "tide-clock"
# Funded: this many backers, the first ones (the demo backer among them) on the early bird, every one charged.
FUNDED_BACKERS = 240
FUNDED_EARLY_BIRDS = 100

LUMEN_STORY = """\
## A garden lamp you can open with a screwdriver

Lumen charges from the sun all day and glows warm white all evening. Its battery is a standard 18650 cell in a
holder, its solar panel screws on, and its board is documented: when a part wears out, you replace that part.

## Where the money goes

1. Tooling for the aluminium housing: 40 %
2. The first production runs at our partner factory in Dongguan: 50 %
3. Safety and radio certification: 10 %
"""


def _has_address(n: int) -> bool:
    """Whether the funded campaign's backer `n` has given an address: all but every thirteenth (the demo backer has)."""
    return n % 13 != 12


def _card_fee(amount: int) -> int:
    """About what Stripe keeps on a card charge: 3.4 % plus 2 yuan."""
    return amount * 34 // 1000 + 200


async def demo_funded_campaign(
    session: AsyncSession, settings: Settings, demo: Demo, crowd: Sequence[User]
) -> Campaign:
    """Lumen, a solar garden lamp: funded by 240 backers and in fulfillment. Every pledge is collected and booked
    in the ledger; most backers have given an address, a few have not. The real planner made the batches; the first
    batch is confirmed and shipped with tracking numbers, the second is in production; the milestones that are due
    are released and the first payout is paid."""
    found = await session.scalar(select(Campaign).where(Campaign.slug == FUNDED_SLUG))
    if found is not None:
        return found
    maker = demo.maker
    campaign = await service.create_campaign(
        session,
        maker,
        CampaignCreate(
            title="Lumen: a solar garden lamp you can repair",
            summary="Charges from the sun, glows all evening, and opens with a screwdriver when a part wears out.",
            description=LUMEN_STORY,
            currency="CNY",
            goal=6_000_000,
            space_id=demo.space.id,
            duration_days=30,
        ),
    )
    await _use_slug(session, campaign, FUNDED_SLUG)
    await catalog.add_product(
        session,
        campaign.id,
        maker,
        ProductCreate(
            sku="LUMEN-1", name="Lumen lamp", weight_grams=380, unit_cost=4_200, batch_size=100, overage_bps=200
        ),
    )
    shipping = [ShippingRate(country="CN", fee=1_000), ShippingRate(country="*", fee=8_000)]
    early_bird = await catalog.add_tier(
        session,
        campaign.id,
        maker,
        TierCreate(
            title="Early bird: one lamp",
            description="One Lumen lamp at the early price, for the first 100 backers.",
            price=19_900,
            quantity_limit=FUNDED_EARLY_BIRDS,
            items=[TierItem(sku="LUMEN-1", quantity=1)],
            shipping=shipping,
            estimated_delivery=_delivery(30, months_later=0),
        ),
    )
    pair = await catalog.add_tier(
        session,
        campaign.id,
        maker,
        TierCreate(
            title="Two lamps",
            description="A pair for a path or a doorway.",
            price=36_900,
            items=[TierItem(sku="LUMEN-1", quantity=2)],
            shipping=shipping,
            estimated_delivery=_delivery(30, months_later=1),
        ),
    )
    await _approve_and_launch(session, settings, demo, campaign)

    backers = [demo.backer, *[member for member in crowd if member.id != demo.backer.id]][:FUNDED_BACKERS]
    pledges = await _bulk_pledges(
        session,
        campaign,
        early_bird,
        backers[:FUNDED_EARLY_BIRDS],
        status="collected",
        addressed=_has_address,
        days_ago=(41.9, 39),
    )
    pledges += await _bulk_pledges(
        session,
        campaign,
        pair,
        backers[FUNDED_EARLY_BIRDS:],
        status="collected",
        addressed=lambda n: _has_address(n + FUNDED_EARLY_BIRDS),
        days_ago=(41.5, 12.5),
    )
    await ledger.record_collections(
        session,
        campaign,
        [ledger.CollectedPledge(pledge_id, amount, _card_fee(amount)) for pledge_id, amount in pledges],
        settings.platform_fee_bps,
        demo.space.sponsor_fee_bps,
        fund_share_bps=demo.space.fund_share_bps,
    )
    await _close_now(session, settings, campaign, days_ago=12)
    locked = await closing.lock_campaign(session, campaign.id)
    assert locked is not None
    await closing.fund_if_settled(session, locked)
    await fulfillment.plan_campaign(session, campaign.id)

    batches = list(await session.scalars(select(Batch).where(Batch.campaign_id == campaign.id).order_by(Batch.number)))
    first, second = batches[0], batches[1]
    await fulfillment.confirm_batch(session, campaign.id, first.id, maker)
    await fulfillment.start_batch_production(session, campaign.id, first.id, maker)
    listed = await session.scalars(
        select(Allocation.pledge_id)
        .join(Pledge, Pledge.id == Allocation.pledge_id)
        .where(Allocation.list_batch_id == first.id)
        .order_by(Pledge.number)
    )
    tracking = "".join(f"{pledge_id},SF Express,SF{1_402_000_000 + n:010d}\n" for n, pledge_id in enumerate(listed))
    await shipments.record_shipments(session, campaign.id, maker, "pledge_id,carrier,tracking_number\n" + tracking)
    await fulfillment.confirm_batch(session, campaign.id, second.id, maker)
    await fulfillment.start_batch_production(session, campaign.id, second.id, maker)

    for milestone in await milestones.milestones_of(session, campaign.id):
        if milestone.unlocks_on in ("funded", "first_batch_confirmed"):
            await milestones.request_milestone(session, campaign.id, milestone.id, maker)
            await milestones.release_milestone(session, campaign.id, milestone.id, demo.operator, client_address=None)
            if milestone.unlocks_on == "funded":
                await milestones.mark_payout_paid(
                    session,
                    campaign.id,
                    milestone.id,
                    demo.operator,
                    bank_reference="ICBC 2026-11-28 0042",
                    client_address=None,
                )
    return campaign


async def demo_failed_campaign(
    session: AsyncSession, settings: Settings, demo: Demo, crowd: Sequence[User]
) -> Campaign:
    """Tide clock: it reached a fifth of its goal by the deadline, so it is unsuccessful and its pledges cancelled."""
    found = await session.scalar(select(Campaign).where(Campaign.slug == FAILED_SLUG))
    if found is not None:
        return found
    maker = demo.maker
    campaign = await service.create_campaign(
        session,
        maker,
        CampaignCreate(
            title="Tide clock: the harbour's tides on your wall",
            summary="A clock with one hand that shows high and low water for your harbour, from published tables.",
            description="A wall clock whose one hand turns with the tide, not the sun.",
            currency="CNY",
            goal=5_000_000,
            space_id=demo.space.id,
            duration_days=30,
        ),
    )
    await _use_slug(session, campaign, FAILED_SLUG)
    await catalog.add_product(
        session,
        campaign.id,
        maker,
        ProductCreate(sku="TIDE-1", name="Tide clock", weight_grams=900, unit_cost=9_500, batch_size=300),
    )
    clock = await catalog.add_tier(
        session,
        campaign.id,
        maker,
        TierCreate(
            title="One tide clock",
            description="Set to the harbour of your choice.",
            price=39_900,
            items=[TierItem(sku="TIDE-1", quantity=1)],
            shipping=[ShippingRate(country="CN", fee=1_500), ShippingRate(country="*", fee=12_000)],
            estimated_delivery=_delivery(30, months_later=0),
        ),
    )
    await _approve_and_launch(session, settings, demo, campaign)
    await _bulk_pledges(session, campaign, clock, crowd[200:223], status="active", days_ago=(33, 4))
    await _close_now(session, settings, campaign, days_ago=3)
    return campaign


def _delivery(duration_days: int, *, months_later: int) -> str:
    """A delivery month `months_later` months after the first one a campaign launched today may promise, so the
    demo loads whatever the date (catalog.check_delivery_after_deadline)."""
    first = catalog.earliest_delivery(catalog.draft_deadline(duration_days, datetime.now(UTC).date()))
    year, month = (int(part) for part in first.split("-"))
    index = year * 12 + month - 1 + months_later
    return f"{index // 12:04d}-{index % 12 + 1:02d}"
