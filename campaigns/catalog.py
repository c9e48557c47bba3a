"""What a campaign offers: products (SKUs the factory makes) and reward tiers (bundles of SKUs with a price).

Both change only while the campaign is a draft and only by its maker; every change holds the campaign's row lock
(`access.campaign_for`), so a submit never sees half of an edit.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import campaign_for
from campaigns.campaign_schemas import ProductCreate, ProductPatch, ShippingRate, TierCreate, TierPatch
from campaigns.currencies import check_price, check_whole_units
from campaigns.errors import Conflict, InvalidInput, NotFound
from campaigns.ids import parse_id
from campaigns.languages import stored_versions
from campaigns.models import Campaign, Product, ProductVariant, Tier, User


class DeliveryTooEarly(InvalidInput):
    """A tier promising delivery before the campaign has even ended; `earliest` is the first month allowed."""

    def __init__(self, *, deadline: date, earliest: str) -> None:
        super().__init__(
            "estimated_delivery",
            f"must be after the campaign's deadline ({deadline.isoformat()}): {earliest} at the earliest",
        )
        self.deadline = deadline
        self.earliest = earliest


class SkuTaken(Conflict):
    type = "sku-taken"
    title = "The campaign already has a product with this SKU"


# Rules on plain values


def missing_skus(tier: Tier, skus: Collection[str]) -> list[str]:
    """The SKUs in the tier's items that are not among the campaign's products."""
    return [item["sku"] for item in tier.items if item["sku"] not in skus]


def shipping_fee_to(shipping: Sequence[Mapping[str, Any]], country: str) -> int | None:
    """The fee to ship to `country`: its own row, else the rest-of-the-world row ("*"); None when not shipped there."""
    fees = {str(rate["country"]): int(rate["fee"]) for rate in shipping}
    return fees.get(country.upper(), fees.get("*"))


def first_batch_cost(products: Iterable[Product]) -> int:
    """What one factory batch of the campaign's products comes to at the quoted unit costs: batch size × unit cost,
    summed over the products whose cost the maker gave. A goal below it cannot pay for the first batch."""
    return sum(product.batch_size * product.unit_cost for product in products if product.unit_cost is not None)


def earliest_delivery(deadline: date) -> str:
    """The first month a tier may promise delivery in: the whole month after the one the campaign ends in, so
    nothing is promised for before the backers are even charged."""
    year, month = (deadline.year + 1, 1) if deadline.month == 12 else (deadline.year, deadline.month + 1)
    return f"{year:04d}-{month:02d}"


def draft_deadline(duration_days: int, today: date) -> date:
    """When a draft would end if it were launched today."""
    return today + timedelta(days=duration_days)


def campaign_deadline(campaign: Campaign) -> date:
    """The day the campaign ends; for a draft, the day it would end if launched today."""
    return campaign.ends_at.date() if campaign.ends_at else draft_deadline(campaign.duration_days, _today())


def check_delivery_after_deadline(campaign: Campaign, estimated_delivery: str) -> None:
    """A tier's estimated delivery after the campaign's deadline."""
    deadline = campaign_deadline(campaign)
    earliest = earliest_delivery(deadline)
    if estimated_delivery < earliest:  # YYYY-MM strings sort as the months do
        raise DeliveryTooEarly(deadline=deadline, earliest=earliest)


def _today() -> date:
    return datetime.now(UTC).date()


# Products


async def add_product(
    session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, fields: ProductCreate
) -> Product:
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    await _check_no_variant_has(session, campaign, fields.sku)
    product_id = await session.scalar(
        insert(Product)
        .values(
            campaign_id=campaign.id,
            **(
                fields.model_dump()
                | {
                    "language": fields.language or campaign.language,
                    "translations": stored_versions(fields.model_dump()["translations"]),
                }
            ),
        )
        .on_conflict_do_nothing(constraint="uq_products_campaign_sku")
        .returning(Product.id)
    )
    if product_id is None:
        raise SkuTaken(f"This campaign already has a product with the SKU {fields.sku!r}.")
    return await session.get_one(Product, product_id)


async def update_product(
    session: AsyncSession, campaign_ref: uuid.UUID | str, product_ref: uuid.UUID | str, maker: User, patch: ProductPatch
) -> Product:
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    product = await product_of(session, campaign, product_ref)
    changes = patch.changes()
    new_sku = changes.get("sku")
    if new_sku is not None and new_sku != product.sku:
        # Safe to check first: every writer of this campaign's products holds its row lock (campaign_for).
        taken = await session.scalar(
            select(Product.id).where(Product.campaign_id == campaign.id, Product.sku == new_sku)
        )
        if taken is not None:
            raise SkuTaken(f"This campaign already has a product with the SKU {new_sku!r}.")
        await _check_no_variant_has(session, campaign, new_sku)
    if "translations" in changes:
        changes["translations"] = stored_versions(changes["translations"])
    for name, value in changes.items():
        setattr(product, name, value)
    await session.flush()
    return product


async def remove_product(
    session: AsyncSession, campaign_ref: uuid.UUID | str, product_ref: uuid.UUID | str, maker: User
) -> None:
    """Tiers that still name its SKU keep it; submitting then asks for the product back or the tier changed."""
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    product = await product_of(session, campaign, product_ref)
    await session.delete(product)
    await session.flush()


async def _check_no_variant_has(session: AsyncSession, campaign: Campaign, sku: str) -> None:
    # Under the campaign's row lock, like every writer of its SKUs (campaigns/variants.py too).
    taken = await session.scalar(
        select(ProductVariant.id).where(ProductVariant.campaign_id == campaign.id, ProductVariant.sku == sku)
    )
    if taken is not None:
        raise SkuTaken(f"A variant of one of this campaign's products has the SKU {sku!r}.")


async def product_of(session: AsyncSession, campaign: Campaign, product_ref: uuid.UUID | str) -> Product:
    ident = parse_id(product_ref)
    product = await session.get(Product, ident) if ident else None
    if product is None or product.campaign_id != campaign.id:
        raise NotFound("This campaign has no such product.")
    return product


# Tiers


async def add_tier(session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, fields: TierCreate) -> Tier:
    """A new tier, after the others; a limited tier starts with all its slots free."""
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    check_tier_money(campaign, fields.price, fields.shipping)
    check_delivery_after_deadline(campaign, fields.estimated_delivery)
    position = await session.scalar(
        select(func.coalesce(func.max(Tier.position) + 1, 0)).where(Tier.campaign_id == campaign.id)
    )
    tier = Tier(
        campaign_id=campaign.id,
        title=fields.title,
        description=fields.description,
        language=fields.language or campaign.language,
        translations=stored_versions(fields.model_dump()["translations"]),
        price=fields.price,
        quantity_limit=fields.quantity_limit,
        remaining=fields.quantity_limit,
        items=[item.model_dump() for item in fields.items],
        shipping=[rate.model_dump() for rate in fields.shipping],
        estimated_delivery=fields.estimated_delivery,
        position=position or 0,
    )
    session.add(tier)
    await session.flush()
    return tier


def check_tier_money(campaign: Campaign, price: int, shipping: Sequence[ShippingRate]) -> None:
    """A tier's price within what one pledge may come to in the campaign's currency; it and every shipping fee a
    whole number of units (campaigns/currencies.py)."""
    check_price("price", price, campaign.currency)
    for rate in shipping:
        check_whole_units("shipping", rate.fee, campaign.currency)


async def update_tier(
    session: AsyncSession, campaign_ref: uuid.UUID | str, tier_ref: uuid.UUID | str, maker: User, patch: TierPatch
) -> Tier:
    """Changing the quantity limit of a draft's tier frees all its slots again (a draft has no pledges)."""
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    tier = await _tier_of(session, campaign, tier_ref)
    changes = patch.changes()
    check_tier_money(campaign, changes.get("price", tier.price), patch.shipping or [])
    if "estimated_delivery" in changes:
        check_delivery_after_deadline(campaign, changes["estimated_delivery"])
    if "items" in changes:
        changes["items"] = [item.model_dump() for item in patch.items or []]
    if "shipping" in changes:
        changes["shipping"] = [rate.model_dump() for rate in patch.shipping or []]
    if "quantity_limit" in changes:
        changes["remaining"] = changes["quantity_limit"]
    if "translations" in changes:
        changes["translations"] = stored_versions(changes["translations"])
    for name, value in changes.items():
        setattr(tier, name, value)
    await session.flush()
    return tier


async def remove_tier(
    session: AsyncSession, campaign_ref: uuid.UUID | str, tier_ref: uuid.UUID | str, maker: User
) -> None:
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    tier = await _tier_of(session, campaign, tier_ref)
    await session.delete(tier)
    await session.flush()


async def _tier_of(session: AsyncSession, campaign: Campaign, tier_ref: uuid.UUID | str) -> Tier:
    ident = parse_id(tier_ref)
    tier = await session.get(Tier, ident) if ident else None
    if tier is None or tier.campaign_id != campaign.id:
        raise NotFound("This campaign has no such tier.")
    return tier
