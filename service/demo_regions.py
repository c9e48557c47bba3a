"""Demo data beyond Shenzhen: makerspaces in Guangzhou, Foshan and Dongguan, each with a live campaign, so that
discovery by province and city, and the home page's campaigns from other cities, have something to show.

Like every demo part it finds what it made before and makes only what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns import catalog, service, spaces
from campaigns.campaign_schemas import (
    CampaignCreate,
    CampaignTranslation,
    ProductCreate,
    ShippingRate,
    TierCreate,
    TierItem,
)
from campaigns.models import Campaign, Space, User
from payments import space_terms
from service.demo import OPERATOR_EMAIL, Demo, _approve_and_launch, _bulk_pledges, _delivery, _use_slug
from service.settings import Settings

PROVINCE = "Guangdong"
# The fund every demo space keeps: a fifth of its sponsor fee, up to 5,000.00 CNY for one campaign's backers.
FUND_SHARE_BPS = 2000
FUND_CAP = 500_000


@dataclass(frozen=True)
class RegionalCampaign:
    slug: str
    title: str
    title_zh: str
    summary: str
    summary_zh: str
    sku: str
    product: str
    price: int
    goal: int
    backers: int


@dataclass(frozen=True)
class RegionalSpace:
    slug: str
    name: str
    city: str
    description: str
    campaign: RegionalCampaign


REGIONAL_SPACES = (
    RegionalSpace(
        slug="guangzhou-makers-hub",
        name="Guangzhou Makers Hub",
        city="Guangzhou",
        description="Benches in Tianhe for students and makers; the electronics market is a bus ride away.",
        campaign=RegionalCampaign(
            slug="chirp-bird-recorder",
            title="Chirp: a bird-song recorder for balconies",
            title_zh="Chirp：阳台鸟鸣录音器",
            summary="A weatherproof recorder that wakes at dawn, keeps the songs and tells you which birds sang.",
            summary_zh="防水录音器，黎明时醒来，录下鸟鸣并告诉你是哪些鸟在唱。",
            sku="CHIRP-1",
            product="Chirp recorder",
            price=29_900,
            goal=6_000_000,
            backers=41,
        ),
    ),
    RegionalSpace(
        slug="foshan-foundry-lab",
        name="Foshan Foundry Lab",
        city="Foshan",
        description="Ceramics kilns and metal shops in Shunde; the appliance factories around it make the first batch.",
        campaign=RegionalCampaign(
            slug="glaze-kiln-controller",
            title="Glaze: a kiln controller for small studios",
            title_zh="Glaze：小型工作室窑炉控制器",
            summary="Firing schedules on your phone, a thermocouple that lasts, and a relay a potter can replace.",
            summary_zh="在手机上设定烧制曲线，耐用的热电偶，陶艺师自己就能更换的继电器。",
            sku="GLAZE-1",
            product="Glaze controller",
            price=89_900,
            goal=8_000_000,
            backers=23,
        ),
    ),
    RegionalSpace(
        slug="dongguan-factory-commons",
        name="Dongguan Factory Commons",
        city="Dongguan",
        description="A makerspace inside an injection-moulding park in Songshan Lake: tooling is made across the road.",
        campaign=RegionalCampaign(
            slug="stack-robot-blocks",
            title="Stack: robot blocks for classrooms",
            title_zh="Stack：课堂机器人积木",
            summary="Snap-together motor, sensor and battery blocks that a class of forty can share and repair.",
            summary_zh="电机、传感器和电池积木一扣即合，四十人的班级可以共用，也能自己修。",
            sku="STACK-KIT",
            product="Stack starter kit",
            price=45_900,
            goal=12_000_000,
            backers=58,
        ),
    ),
)


async def demo_regional_spaces(
    session: AsyncSession, settings: Settings, demo: Demo, crowd: Sequence[User]
) -> list[Campaign]:
    """The three spaces beyond Shenzhen, run by the demo operator, each with a live campaign by the demo maker; and
    the province and fund of every demo space."""
    await _place_and_fund(session, demo, demo.space)
    campaigns = []
    start = 0
    for regional in REGIONAL_SPACES:
        space = await session.scalar(select(Space).where(Space.slug == regional.slug))
        if space is None:
            space = await spaces.create_space(
                session,
                demo.admin,
                client_address=None,
                name=regional.name,
                slug=regional.slug,
                city=regional.city,
                province=PROVINCE,
                country="CN",
                sponsor_fee_bps=300,
                description=regional.description,
            )
            await _place_and_fund(session, demo, space)
        await spaces.add_operator(session, demo.admin, space, OPERATOR_EMAIL, client_address=None)
        wanted = regional.campaign
        campaigns.append(
            await _regional_campaign(session, settings, demo, space, wanted, crowd[start : start + wanted.backers])
        )
        start += wanted.backers
    return campaigns


async def _place_and_fund(session: AsyncSession, demo: Demo, space: Space) -> None:
    if space.province:
        return
    await space_terms.edit_space(
        session, demo.admin, space.id, fund_share_bps=FUND_SHARE_BPS, fund_cap=FUND_CAP, client_address=None
    )
    await spaces.update_space(
        session,
        demo.admin,
        space.id,
        name=space.name,
        city=space.city,
        province=PROVINCE,
        country=space.country,
        sponsor_fee_bps=space.sponsor_fee_bps,
        description=space.description,
        client_address=None,
    )


async def _regional_campaign(
    session: AsyncSession,
    settings: Settings,
    demo: Demo,
    space: Space,
    wanted: RegionalCampaign,
    backers: Sequence[User],
) -> Campaign:
    found = await session.scalar(select(Campaign).where(Campaign.slug == wanted.slug))
    if found is not None:
        return found
    campaign = await service.create_campaign(
        session,
        demo.maker,
        CampaignCreate(
            title=wanted.title,
            summary=wanted.summary,
            description=f"## {wanted.title}\n\n{wanted.summary}",
            language="en",
            translations={"zh_CN": CampaignTranslation(title=wanted.title_zh, summary=wanted.summary_zh)},
            currency="CNY",
            goal=wanted.goal,
            space_id=space.id,
            duration_days=30,
        ),
    )
    await _use_slug(session, campaign, wanted.slug)
    await catalog.add_product(
        session,
        campaign.id,
        demo.maker,
        ProductCreate(
            sku=wanted.sku, name=wanted.product, weight_grams=300, unit_cost=wanted.price // 3, batch_size=300
        ),
    )
    tier = await catalog.add_tier(
        session,
        campaign.id,
        demo.maker,
        TierCreate(
            title=f"One {wanted.product}",
            description=f"One {wanted.product}, shipped when the first batch is made.",
            price=wanted.price,
            items=[TierItem(sku=wanted.sku, quantity=1)],
            shipping=[ShippingRate(country="CN", fee=1_000), ShippingRate(country="*", fee=6_000)],
            estimated_delivery=_delivery(30, months_later=3),
        ),
    )
    await _approve_and_launch(session, settings, demo, campaign)
    if backers:
        await _bulk_pledges(session, campaign, tier, backers, status="active", days_ago=(9, 1))
    return campaign
