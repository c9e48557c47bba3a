"""Rows inserted directly, for arranging what the API cannot reach yet or would take too long to: funded campaigns
with products and tiers, and collected pledges by the thousand."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.models import Campaign, Pledge, Product, Space, Tier, User
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import LineItem, PledgeTerms
from campaigns.pledges.service import item_rows
from tests.helpers import DELIVERY

_counter = itertools.count(1)
EVERYWHERE = ({"country": "*", "fee": 0},)


def address(country: str = "CN", **fields: str) -> dict[str, str]:
    """A complete shipping address (by default in Shenzhen, written in Chinese), as PUT /pledges/{id}/address takes."""
    values = {
        "name": "李雷",
        "line1": "南山区科技园深南大道 9988 号",
        "line2": "柴火创客空间 3 楼",
        "city": "深圳",
        "region": "广东省",
        "postal_code": "518057",
        "country": country,
        "phone": "+86 755 1234 5678",
    }
    values.update(fields)
    return values


async def insert_user(session: AsyncSession, name: str = "Backer", *, locale: str = "en") -> User:
    email = f"{name.lower()}-{next(_counter)}-{uuid.uuid4().hex[:6]}@example.com"
    user = User(email=email, name=name, locale=locale, password_hash="x" * 40, email_verified_at=datetime.now(UTC))
    session.add(user)
    await session.flush()
    return user


async def insert_space(session: AsyncSession) -> Space:
    n = next(_counter)
    slug = f"chaihuo-f{n}-{uuid.uuid4().hex[:6]}"
    space = Space(name=f"Chaihuo {n}", slug=slug, city="Shenzhen", country="CN", sponsor_fee_bps=300)
    session.add(space)
    await session.flush()
    return space


async def insert_campaign(
    session: AsyncSession,
    *,
    maker_id: uuid.UUID | str | None = None,
    space_id: uuid.UUID | str | None = None,
    status: str = "funded",
    title: str = "Grove sensor kit",
    currency: str = "CNY",
    **values: Any,
) -> Campaign:
    """A campaign in `status` (funded by default); a maker and a space are made when not given."""
    maker = uuid.UUID(str(maker_id)) if maker_id else (await insert_user(session, "Maker")).id
    space = uuid.UUID(str(space_id)) if space_id else (await insert_space(session)).id
    campaign = Campaign(
        slug=f"grove-{uuid.uuid4().hex[:10]}",
        title=title,
        summary="Sensors that snap together.",
        currency=currency,
        goal=100_000,
        status=status,
        space_id=space,
        maker_id=maker,
        duration_days=30,
        **values,
    )
    session.add(campaign)
    await session.flush()
    return campaign


async def insert_product(
    session: AsyncSession,
    campaign: Campaign,
    sku: str,
    *,
    batch_size: int,
    overage_bps: int = 0,
    weight_grams: int = 100,
) -> Product:
    product = Product(
        campaign_id=campaign.id,
        sku=sku,
        name=sku.title(),
        weight_grams=weight_grams,
        batch_size=batch_size,
        overage_bps=overage_bps,
    )
    session.add(product)
    await session.flush()
    return product


async def insert_tier(
    session: AsyncSession,
    campaign: Campaign,
    items: Mapping[str, int],
    *,
    shipping: Sequence[Mapping[str, Any]] = EVERYWHERE,
    price: int = 10_000,
    title: str = "Starter kit",
) -> Tier:
    tier = Tier(
        campaign_id=campaign.id,
        title=title,
        price=price,
        items=[{"sku": sku, "quantity": quantity} for sku, quantity in items.items()],
        shipping=[dict(rate) for rate in shipping],
        estimated_delivery=DELIVERY,
    )
    session.add(tier)
    await session.flush()
    return tier


def pledge_lines(
    pledge_id: uuid.UUID, tier_id: uuid.UUID | None, price: int, *, bonus: int = 0, shipping_fee: int = 0
) -> list[dict[str, Any]]:
    """The `pledge_items` rows of a pledge of the tier `tier_id` at `price` (or of no reward), with its bonus and fee,
    as pricing makes them: so the pledge's amount is their sum."""
    lines = [LineItem("tier", 1, price, ref_id=tier_id)] if tier_id is not None else []
    lines += [LineItem(kind, 1, amount) for kind, amount in (("bonus", bonus), ("shipping", shipping_fee)) if amount]
    return item_rows(pledge_id, PledgeTerms(tier_id, bonus, shipping_fee, None, "", tuple(lines)))


async def insert_pledge(
    session: AsyncSession,
    campaign: Campaign,
    tier: Tier | None,
    *,
    backer_id: uuid.UUID | str | None = None,
    status: str = "collected",
    shipping_country: str | None = "CN",
    given_address: Mapping[str, str] | None = None,
) -> Pledge:
    """One pledge of `tier` (or none: a pledge without reward), collected by default, by a new backer if none given."""
    backer = uuid.UUID(str(backer_id)) if backer_id else (await insert_user(session)).id
    amount = tier.price if tier is not None else 5_000
    pledge = Pledge(
        campaign_id=campaign.id,
        backer_id=backer,
        tier_id=tier.id if tier is not None else None,
        status=status,
        amount=amount,
        bonus=0 if tier is not None else amount,
        currency=campaign.currency,
        shipping_country=shipping_country if tier is not None else None,
    )
    if given_address is not None:
        pledge.address = dict(given_address)
    session.add(pledge)
    await session.flush()
    price = tier.price if tier is not None else 0
    await session.execute(insert(PledgeItem), pledge_lines(pledge.id, pledge.tier_id, price, bonus=pledge.bonus))
    return pledge


async def insert_pledges(
    session: AsyncSession,
    campaign: Campaign,
    tier: Tier,
    count: int,
    *,
    status: str = "collected",
    given_address: Mapping[str, str] | None = None,
) -> list[uuid.UUID]:
    """`count` pledges of `tier` by as many new backers, in a few bulk statements; their ids in arrival order."""
    run = uuid.uuid4().hex[:8]
    users = [
        {"id": uuid.uuid4(), "email": f"b{i}-{run}@example.com", "name": f"Backer {i}", "password_hash": "x" * 40}
        for i in range(count)
    ]
    await session.execute(insert(User), users)
    pledges: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "campaign_id": campaign.id,
            "backer_id": user["id"],
            "tier_id": tier.id,
            "status": status,
            "amount": tier.price,
            "currency": campaign.currency,
            "shipping_country": "CN",
        }
        for user in users
    ]
    if given_address is not None:
        for pledge in pledges:
            pledge["address"] = dict(given_address)
    await session.execute(insert(Pledge), pledges)
    ids = [pledge["id"] for pledge in pledges]
    await session.execute(
        insert(PledgeItem), [line for pledge_id in ids for line in pledge_lines(pledge_id, tier.id, tier.price)]
    )
    numbered = await session.execute(select(Pledge.id).where(Pledge.campaign_id == campaign.id).order_by(Pledge.number))
    order = {pledge_id: i for i, pledge_id in enumerate(numbered.scalars())}
    return sorted(ids, key=order.__getitem__)
