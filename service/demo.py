"""Demo data for `kindling demo` and the first `kindling dev`: a makerspace, its operator, a maker, a backer, an admin.

Every part finds what it made before and makes only what is missing, so loading twice changes nothing. A new part
(campaigns, pledges) is one more function taking the session, the settings and the `Demo` built so far, called
from load_demo.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns import accounts, catalog, review, service, spaces, two_factor, updates
from campaigns.campaign_schemas import (
    CampaignCreate,
    CampaignPatch,
    Checklist,
    ProductCreate,
    ReviewCreate,
    ShippingRate,
    TierCreate,
    TierItem,
    UpdateCreate,
)
from campaigns.images import add_campaign_image, image_url
from campaigns.models import Campaign, Space, Tier, User
from service import demo_pictures
from service.settings import Settings

# Every demo account has this password (documented in the README and printed by `kindling demo`).
DEMO_PASSWORD = "kindling-demo"
# The demo's admin and operator have two-factor on with this key (documented in the README): add it to an
# authenticator app, or print the current code with `python -c "import pyotp; print(pyotp.TOTP('<key>').now())"`.
DEMO_TOTP_SECRET = "KINDLINGDEMOKINDLINGDEMO"
ADMIN_EMAIL = "admin@kindling.localhost"
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
    await demo_live_campaign(session, settings, demo)
    await demo_campaign_in_review(session, settings, demo)
    return demo


async def demo_people_and_space(session: AsyncSession) -> Demo:
    admin, _created = await accounts.create_admin(session, email=ADMIN_EMAIL, password=DEMO_PASSWORD)
    operator = await _ensure_user(session, OPERATOR_EMAIL, "Li Wei", locale="zh_CN")
    for holder in (admin, operator):
        await two_factor.enrol_with_known_secret(session, holder, DEMO_TOTP_SECRET)
    maker = await _ensure_user(session, MAKER_EMAIL, "Ada Maker")
    backer = await _ensure_user(session, BACKER_EMAIL, "Ben Backer")
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


async def _ensure_user(session: AsyncSession, email: str, name: str, *, locale: str = "en") -> User:
    user = await session.scalar(select(User).where(User.email == email))
    if user is None:
        user = await accounts.register_user(
            session, email=email, password=DEMO_PASSWORD, name=name, locale=locale, verified=True
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


async def demo_live_campaign(session: AsyncSession, settings: Settings, demo: Demo) -> Campaign:
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
            currency="CNY",
            goal=15_000_000,
            space_id=demo.space.id,
            duration_days=30,
        ),
    )
    await _use_slug(session, campaign, LIVE_SLUG)
    for product in (
        ProductCreate(
            sku="LOAM-1", name="Loam sensor", weight_grams=45, unit_cost=3_850, batch_size=500, overage_bps=300
        ),
        ProductCreate(
            sku="LOAM-GW", name="Loam LoRa gateway", weight_grams=160, unit_cost=14_500, batch_size=200, overage_bps=200
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
            price=14_900,
            quantity_limit=200,
            items=[TierItem(sku="LOAM-1", quantity=1)],
            shipping=[ShippingRate(country="CN", fee=1_000), ShippingRate(country="*", fee=6_000)],
            estimated_delivery="2027-03",
        ),
    )
    await catalog.add_tier(
        session,
        campaign.id,
        maker,
        TierCreate(
            title="Garden kit: three sensors and a gateway",
            description="Everything a balcony or a vegetable garden needs. **Free shipping in China.**",
            price=69_900,
            items=[
                TierItem(sku="LOAM-1", quantity=3),
                TierItem(sku="LOAM-GW", quantity=1),
                TierItem(sku="LOAM-TIPS", quantity=1),
            ],
            shipping=[ShippingRate(country="CN", fee=0), ShippingRate(country="*", fee=9_000)],
            estimated_delivery="2027-04",
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
            estimated_delivery="2027-05",
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
            checklist=Checklist(prototype=True, bill_of_materials=True, manufacturing_quote=True, certifications=True),
        ),
        base_url=settings.base_url,
        client_address=None,
    )
    await service.launch_campaign(
        session, campaign.id, maker, day_seconds=settings.day_seconds, base_url=settings.base_url
    )
    # Nearly sold out. Real pledges need a card, and there is no card at demo time, so the slots are taken
    # directly: the tier shows 3 of 200 left while the campaign's pledged total stays at what real pledges add.
    await session.execute(update(Tier).where(Tier.id == early_bird.id).values(remaining=3))
    await updates.post_update(
        session,
        campaign.id,
        maker,
        UpdateCreate(title="The pilot run is on the bench", body=LOAM_UPDATE, visibility="public"),
        base_url=settings.base_url,
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
            estimated_delivery="2027-06",
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
            estimated_delivery="2027-06",
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
