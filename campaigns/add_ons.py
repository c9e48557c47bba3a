"""Add-ons: a campaign's product (or one variant of it) offered alone at a price, beside the tiers.

They change while the campaign may be edited (a draft, as tiers), only by its maker, under the campaign's row lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import campaign_for
from campaigns.campaign_schemas import AddOnCreate, AddOnPatch, ShippingRate
from campaigns.currencies import check_price, check_whole_units
from campaigns.errors import InvalidInput, NotFound
from campaigns.ids import parse_id
from campaigns.models import AddOn, AddOnTier, Campaign, Product, ProductVariant, Tier, User


@dataclass(frozen=True)
class OfferedAddOn:
    """An add-on with what it is (product, fixed variant) and the tiers it is limited to (empty: any)."""

    add_on: AddOn
    product: Product
    variant: ProductVariant | None
    tier_ids: list[uuid.UUID]

    @property
    def sku(self) -> str:
        return self.variant.sku if self.variant else self.product.sku


async def add_add_on(session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, fields: AddOnCreate) -> AddOn:
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    await _check_offer(session, campaign, fields.product_id, fields.variant_id, fields.tier_ids)
    _check_money(campaign, fields.price, fields.shipping)
    position = await session.scalar(
        select(func.coalesce(func.max(AddOn.position) + 1, 0)).where(AddOn.campaign_id == campaign.id)
    )
    add_on = AddOn(
        campaign_id=campaign.id,
        product_id=fields.product_id,
        variant_id=fields.variant_id,
        price=fields.price,
        quantity_limit=fields.limit,
        remaining=fields.limit,
        ships_alone=fields.ships_alone,
        shipping=[rate.model_dump() for rate in fields.shipping],
        position=position or 0,
    )
    session.add(add_on)
    await session.flush()
    await _limit_to_tiers(session, add_on, fields.tier_ids)
    return add_on


async def update_add_on(
    session: AsyncSession, campaign_ref: uuid.UUID | str, add_on_ref: uuid.UUID | str, maker: User, patch: AddOnPatch
) -> AddOn:
    """A new limit frees all its units again (a draft has no pledges); a new product without a variant unfixes it."""
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    add_on = await _add_on_of(session, campaign, add_on_ref)
    changes = patch.changes()
    product_id = changes.get("product_id", add_on.product_id)
    if "product_id" in changes and "variant_id" not in changes:
        changes["variant_id"] = None
    variant_id = changes.get("variant_id", add_on.variant_id)
    await _check_offer(session, campaign, product_id, variant_id, patch.tier_ids or [])
    _check_money(campaign, changes.get("price", add_on.price), patch.shipping or [])
    if "shipping" in changes:
        changes["shipping"] = [rate.model_dump() for rate in patch.shipping or []]
    if "limit" in changes:
        limit = changes.pop("limit")
        changes |= {"quantity_limit": limit, "remaining": limit}
    tier_ids = changes.pop("tier_ids", None)
    for name, value in changes.items():
        setattr(add_on, name, value)
    await session.flush()
    if tier_ids is not None:
        await _limit_to_tiers(session, add_on, tier_ids)
    return add_on


async def remove_add_on(
    session: AsyncSession, campaign_ref: uuid.UUID | str, add_on_ref: uuid.UUID | str, maker: User
) -> None:
    campaign, _roles = await campaign_for(session, campaign_ref, maker, "edit")
    add_on = await _add_on_of(session, campaign, add_on_ref)
    await session.delete(add_on)
    await session.flush()


async def offered_add_ons(
    session: AsyncSession, campaign_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[OfferedAddOn]]:
    """The campaigns' add-ons in the maker's order, in three queries however many there are."""
    found: dict[uuid.UUID, list[OfferedAddOn]] = {campaign_id: [] for campaign_id in campaign_ids}
    if not campaign_ids:
        return found
    rows = (
        await session.execute(
            select(AddOn, Product, ProductVariant)
            .join(Product, Product.id == AddOn.product_id)
            .outerjoin(ProductVariant, ProductVariant.id == AddOn.variant_id)
            .where(AddOn.campaign_id.in_(campaign_ids))
            .order_by(AddOn.position, AddOn.created_at, AddOn.id)
        )
    ).all()
    links = await session.execute(
        select(AddOnTier.add_on_id, AddOnTier.tier_id)
        .join(Tier, Tier.id == AddOnTier.tier_id)
        .where(AddOnTier.add_on_id.in_([row[0].id for row in rows]))
        .order_by(Tier.position, Tier.created_at, Tier.id)
    )
    tiers_of: dict[uuid.UUID, list[uuid.UUID]] = {}
    for add_on_id, tier_id in links:
        tiers_of.setdefault(add_on_id, []).append(tier_id)
    for add_on, product, variant in rows:
        found[add_on.campaign_id].append(OfferedAddOn(add_on, product, variant, tiers_of.get(add_on.id, [])))
    return found


async def offered_add_on(session: AsyncSession, add_on: AddOn) -> OfferedAddOn:
    for offered in (await offered_add_ons(session, [add_on.campaign_id]))[add_on.campaign_id]:
        if offered.add_on.id == add_on.id:
            return offered
    raise NotFound("This campaign has no such add-on.")


async def _check_offer(
    session: AsyncSession,
    campaign: Campaign,
    product_id: uuid.UUID,
    variant_id: uuid.UUID | None,
    tier_ids: Sequence[uuid.UUID],
) -> None:
    """The product, variant and tiers are this campaign's; a 422 naming the field otherwise."""
    product = await session.get(Product, product_id)
    if product is None or product.campaign_id != campaign.id:
        raise InvalidInput("product_id", "must be one of this campaign's products")
    if variant_id is not None:
        variant = await session.get(ProductVariant, variant_id)
        if variant is None or variant.product_id != product.id:
            raise InvalidInput("variant_id", "must be one of the chosen product's variants")
    if tier_ids:
        own = set(await session.scalars(select(Tier.id).where(Tier.campaign_id == campaign.id, Tier.id.in_(tier_ids))))
        if own != set(tier_ids):
            raise InvalidInput("tier_ids", "must name only this campaign's tiers")


def _check_money(campaign: Campaign, price: int, shipping: Sequence[ShippingRate]) -> None:
    """As a tier's: the price within what one pledge may come to, it and each fee a whole number of units."""
    check_price("price", price, campaign.currency)
    for rate in shipping:
        check_whole_units("shipping", rate.fee, campaign.currency)


async def _limit_to_tiers(session: AsyncSession, add_on: AddOn, tier_ids: Sequence[uuid.UUID]) -> None:
    await session.execute(delete(AddOnTier).where(AddOnTier.add_on_id == add_on.id))
    session.add_all(AddOnTier(add_on_id=add_on.id, tier_id=tier_id) for tier_id in tier_ids)
    await session.flush()


async def _add_on_of(session: AsyncSession, campaign: Campaign, add_on_ref: uuid.UUID | str) -> AddOn:
    ident = parse_id(add_on_ref)
    add_on = await session.get(AddOn, ident) if ident else None
    if add_on is None or add_on.campaign_id != campaign.id:
        raise NotFound("This campaign has no such add-on.")
    return add_on
