"""The backer's variants and add-ons checked against the catalogue: a `PledgeChoice` becomes a `ResolvedChoice` that
`price_pledge` prices and the reservation takes units of.

Every rule is a 422 naming the field: a product of the tier with options must be chosen (`variants.<product id>`)
and as one of its combinations; a product that is not in the tier's bundle (another tier's, another campaign's) is
not a choice; an add-on must be this campaign's (`add_ons.<n>.add_on_id`), offered with the chosen tier, in a
quantity of 1 to `MOST_OF_ONE_ADD_ON` (`add_ons.<n>.quantity`), of one of its product's variants when the add-on
leaves the options open (`add_ons.<n>.variant`), and with a tier that ships when it is not shipped alone. Read-only:
nothing is taken here (the reservation does that, campaigns/pledges/service.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import InvalidInput
from campaigns.ids import parse_id
from campaigns.models import AddOn, AddOnTier, Campaign, Product, ProductVariant, Tier
from campaigns.pledges.contents import units_of
from campaigns.pledges.pricing import (
    NOTHING_CHOSEN,
    AddOnChoice,
    ChosenAddOn,
    ChosenVariant,
    PledgeChoice,
    ResolvedChoice,
    ships,
)
from campaigns.variants import choice_key

# The most of one add-on a pledge holds: a backer buying more is a reseller, and a typo of 100 is caught.
MOST_OF_ONE_ADD_ON = 20
# The most add-on lines one pledge has (a campaign offers a handful).
MOST_ADD_ON_LINES = 30

__all__ = [
    "MOST_ADD_ON_LINES",
    "MOST_OF_ONE_ADD_ON",
    "AddOnChoice",
    "add_on_columns",
    "add_on_idents",
    "offered_add_ons",
    "resolve_add_ons",
    "resolve_choice",
    "resolve_tier_variants",
]


async def resolve_choice(
    session: AsyncSession,
    campaign: Campaign,
    tier: Tier | None,
    choice: PledgeChoice,
    *,
    optioned: bool = True,
    offered: Sequence[Any] | None = None,
) -> ResolvedChoice:
    """The choice's variants and add-ons for `tier` (the tier it names, already found in `campaign`). `optioned`
    False: the caller knows no product of the tier has options, so a choice of neither asks the database nothing.
    `offered`: the rows of `offered_add_ons` for the choice, when the caller asked for them with a query of its own."""
    if not choice.variants and not choice.add_ons and (tier is None or not ships(tier) or not optioned):
        return NOTHING_CHOSEN
    # No product of the tier has options and none is chosen: the tier's variants are none, without asking (a launch
    # rush's pledges of a tier plus an add-on are one query fewer).
    variants: tuple[ChosenVariant, ...] = ()
    if choice.variants or optioned:
        variants = await resolve_tier_variants(session, campaign, tier, choice.variants)
    add_ons = await resolve_add_ons(session, campaign, tier, choice.add_ons, offered=offered)
    return ResolvedChoice(variants, add_ons)


async def resolve_tier_variants(
    session: AsyncSession, campaign: Campaign, tier: Tier | None, chosen: Mapping[str, Mapping[str, str]]
) -> tuple[ChosenVariant, ...]:
    """Each product of the tier's bundle that has options, as the variant `chosen[str(product id)]` names."""
    bundle = units_of(tier.items) if tier is not None else {}
    products: list[Product] = []
    if bundle:
        products = list(
            await session.scalars(
                select(Product)
                .where(Product.campaign_id == campaign.id, Product.sku.in_(list(bundle)))
                .order_by(Product.created_at, Product.id)
            )
        )
    optioned = {str(product.id): product for product in products if product.options}
    for key in chosen:
        if key not in optioned:
            raise InvalidInput(f"variants.{key}", "is not a product with options in this reward")
    missing = [key for key in optioned if key not in chosen]
    if missing:
        raise InvalidInput(f"variants.{missing[0]}", "choose one of this product's options")
    if not optioned:
        return ()
    found = await session.scalars(
        select(ProductVariant).where(ProductVariant.product_id.in_([p.id for p in optioned.values()]))
    )
    by_choice = {(str(v.product_id), choice_key(v.choice)): v for v in found}
    resolved: list[ChosenVariant] = []
    for key, product in optioned.items():
        wanted = _plain_choice(chosen[key], f"variants.{key}")
        variant = by_choice.get((key, choice_key(wanted)))
        if variant is None:
            raise InvalidInput(f"variants.{key}", "is not one of this product's variants")
        resolved.append(
            ChosenVariant(
                product_id=product.id,
                product_sku=product.sku,
                variant_id=variant.id,
                choice=dict(variant.choice),
                sku=variant.sku,
                units=bundle[product.sku],
                limited=variant.quantity_limit is not None,
            )
        )
    return tuple(resolved)


def add_on_idents(chosen: Sequence[AddOnChoice]) -> list[uuid.UUID]:
    """The ids the chosen add-ons name (those that are ids at all); a 422 when there are too many lines."""
    if len(chosen) > MOST_ADD_ON_LINES:
        raise InvalidInput("add_ons", f"at most {MOST_ADD_ON_LINES} add-ons in one pledge")
    return [ident for ident in (parse_id(one.add_on_id) for one in chosen) if ident is not None]


def add_on_columns() -> tuple[Any, ...]:
    """An add-on row as `resolve_add_ons` reads it: the add-on, its product, the tiers it is limited to (or NULL)."""
    limited_to = select(func.array_agg(AddOnTier.tier_id)).where(AddOnTier.add_on_id == AddOn.id).scalar_subquery()
    return AddOn, Product, limited_to


def offered_add_ons(campaign_id: uuid.UUID, idents: Sequence[uuid.UUID]) -> Any:
    """Which add-ons of `idents` are the campaign's: a condition on `add_ons`, which another query may join on
    (`pledges.service._tier_of` asks for them with the tier)."""
    return and_(AddOn.id.in_(idents), AddOn.campaign_id == campaign_id)


async def resolve_add_ons(
    session: AsyncSession,
    campaign: Campaign,
    tier: Tier | None,
    chosen: Sequence[AddOnChoice],
    *,
    offered: Sequence[Any] | None = None,
) -> tuple[ChosenAddOn, ...]:
    """Each chosen add-on as a line: this campaign's, allowed with `tier`, 1..MOST_OF_ONE_ADD_ON of it, of one of its
    product's variants when the add-on leaves them open, never one that does not ship alone without a tier that
    ships. The same add-on in the same variant twice is refused (give it once with its quantity). `offered`: the
    rows of `add_on_columns` under `offered_add_ons`, when the caller has them already (None ones are skipped)."""
    if not chosen:
        return ()
    wanted = add_on_idents(chosen)
    idents = [parse_id(one.add_on_id) for one in chosen]
    if offered is None:
        # The add-ons with their products and the tiers they are limited to, in one query.
        offered = (
            await session.execute(
                select(*add_on_columns())
                .join(Product, Product.id == AddOn.product_id)
                .where(offered_add_ons(campaign.id, wanted))
            )
        ).all()
    rows = [row for row in offered if row[0] is not None]
    found = {add_on.id: (add_on, product) for add_on, product, _tiers in rows}
    tiers_of = {add_on.id: set(tiers or ()) for add_on, _product, tiers in rows}
    variants = await _variants_by_product(session, [product for _add_on, product in found.values()])
    resolved: list[ChosenAddOn] = []
    seen: set[tuple[uuid.UUID, tuple[tuple[str, str], ...]]] = set()
    for position, (one, ident) in enumerate(zip(chosen, idents, strict=True)):
        field = f"add_ons.{position}"
        if ident is None or ident not in found:
            raise InvalidInput(f"{field}.add_on_id", "is not an add-on of this campaign")
        add_on, product = found[ident]
        allowed = tiers_of.get(add_on.id)
        if allowed and (tier is None or tier.id not in allowed):
            raise InvalidInput(f"{field}.add_on_id", "is not offered with this reward")
        if not add_on.ships_alone and (tier is None or not ships(tier)):
            raise InvalidInput(f"{field}.add_on_id", "comes only with a reward that ships")
        if not (isinstance(one.quantity, int) and 1 <= one.quantity <= MOST_OF_ONE_ADD_ON):
            raise InvalidInput(f"{field}.quantity", f"must be 1 to {MOST_OF_ONE_ADD_ON}")
        variant = _add_on_variant(add_on, product, variants.get(product.id, []), one.variant, f"{field}.variant")
        key = (add_on.id, choice_key(dict(variant.choice)) if variant else ())
        if key in seen:
            raise InvalidInput(f"{field}.add_on_id", "is chosen twice: give it once with its quantity")
        seen.add(key)
        resolved.append(
            ChosenAddOn(
                add_on_id=add_on.id,
                product_id=product.id,
                variant_id=variant.id if variant else None,
                choice=dict(variant.choice) if variant else {},
                sku=variant.sku if variant else product.sku,
                quantity=one.quantity,
                unit_amount=add_on.price,
                shipping=list(add_on.shipping),
                limited=add_on.quantity_limit is not None,
                variant_limited=variant is not None and variant.quantity_limit is not None,
            )
        )
    return tuple(resolved)


def _add_on_variant(
    add_on: AddOn,
    product: Product,
    variants: Sequence[ProductVariant],
    wanted: Mapping[str, str],
    field: str,
) -> ProductVariant | None:
    """The variant an add-on line is: the one the add-on fixes (a choice, if given, must be it), else the one the
    backer names among its product's; None for a product without options."""
    plain = _plain_choice(wanted, field)
    if add_on.variant_id is not None:
        fixed = next((v for v in variants if v.id == add_on.variant_id), None)
        if fixed is None:
            raise InvalidInput(field, "this add-on's variant is no longer offered")
        if plain and choice_key(plain) != choice_key(fixed.choice):
            raise InvalidInput(field, "this add-on comes only as " + ", ".join(map(str, fixed.choice.values())))
        return fixed
    if not product.options:
        if plain:
            raise InvalidInput(field, "this add-on has no options to choose")
        return None
    if not plain:
        raise InvalidInput(field, "choose one of this add-on's options")
    found = next((v for v in variants if choice_key(v.choice) == choice_key(plain)), None)
    if found is None:
        raise InvalidInput(field, "is not one of this add-on's variants")
    return found


async def _variants_by_product(
    session: AsyncSession, products: Sequence[Product]
) -> dict[uuid.UUID, list[ProductVariant]]:
    ids = [product.id for product in products if product.options]
    found: dict[uuid.UUID, list[ProductVariant]] = {}
    if ids:
        for variant in await session.scalars(select(ProductVariant).where(ProductVariant.product_id.in_(ids))):
            found.setdefault(variant.product_id, []).append(variant)
    return found


def _plain_choice(wanted: Any, field: str) -> dict[str, str]:
    """{option: value} of strings, or a 422 naming `field` (a form or a body may send anything)."""
    if not isinstance(wanted, Mapping) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in wanted.items()
    ):
        raise InvalidInput(field, "must map each option's name to a value")
    return dict(wanted)
