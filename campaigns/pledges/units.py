"""The units a pledge holds of limited variants and add-ons, taken with its reservation and given back when it ends.

Taking is one conditional UPDATE per row, always in the same order (variants, then add-ons, each by id; the tier's
slot after them), so two pledges never wait on each other in a circle: inside the reservation's one statement, or
(a change of pledge) by campaigns/stock.py in the request's transaction. Giving back follows the
tier's slot: the caller has just moved the pledge out of its open statuses by a conditional UPDATE, which succeeds
once, so the units come back exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ARRAY, Uuid, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.models import AddOn, Product, ProductVariant, Tier
from campaigns.pledges.contents import units_of
from campaigns.pledges.models import PledgeItem
from campaigns.pledges.pricing import ResolvedChoice
from campaigns.stock import give_back_units, take_units
from campaigns.variants import choice_key


def units_to_take(resolved: ResolvedChoice) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, int]]:
    """The units `resolved` needs of each limited variant and each limited add-on."""
    variant_units: dict[uuid.UUID, int] = {}
    add_on_units: dict[uuid.UUID, int] = {}
    for variant in resolved.tier_variants:
        if variant.limited:
            variant_units[variant.variant_id] = variant_units.get(variant.variant_id, 0) + variant.units
    for add_on in resolved.add_ons:
        if add_on.variant_limited and add_on.variant_id is not None:
            variant_units[add_on.variant_id] = variant_units.get(add_on.variant_id, 0) + add_on.quantity
        if add_on.limited:
            add_on_units[add_on.add_on_id] = add_on_units.get(add_on.add_on_id, 0) + add_on.quantity
    return variant_units, add_on_units


async def take_chosen_units(session: AsyncSession, resolved: ResolvedChoice) -> None:
    """Takes the units of every limited variant and add-on of `resolved` (a change of pledge: the reservation takes
    them in its one statement, campaigns/pledges/service.py); UnitsSoldOut (409 `sold-out`) when one has too few
    left, and the caller's transaction then undoes whatever was taken before it."""
    variant_units, add_on_units = units_to_take(resolved)
    for variant_id in sorted(variant_units):
        await take_units(session, ProductVariant, variant_id, variant_units[variant_id])
    for add_on_id in sorted(add_on_units):
        await take_units(session, AddOn, add_on_id, add_on_units[add_on_id])


async def held_units(
    session: AsyncSession, pledge_ids: Sequence[uuid.UUID]
) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, int]]:
    """The units the pledges' lines stand for, per variant and per add-on (limited or not): a tier line's chosen
    variants times the product's count in the bundle, an add-on line's add-on and its variant times its quantity."""
    if not pledge_ids:
        return {}, {}
    # The ids go as one array joined as a table: a failed campaign cancels 100,000 pledges at once, more than one
    # statement may have parameters.
    wanted = (
        func.unnest(bindparam("pledge_ids", list(pledge_ids), type_=ARRAY(Uuid())))
        .table_valued("pledge_id")
        .render_derived()
    )
    lines = (
        await session.execute(
            select(PledgeItem.kind, PledgeItem.ref_id, PledgeItem.variant, PledgeItem.quantity, PledgeItem.add_on_id)
            .join(wanted, wanted.c.pledge_id == PledgeItem.pledge_id)
            .where(PledgeItem.kind.in_(("tier", "addon")))
            .where((PledgeItem.kind == "addon") | (PledgeItem.variant != {}))
        )
    ).all()
    if not lines:
        return {}, {}
    tier_ids = {ref_id for kind, ref_id, _v, _q, _a in lines if kind == "tier"}
    bundles: dict[uuid.UUID, dict[str, int]] = {}
    if tier_ids:
        found = await session.execute(select(Tier.id, Tier.items).where(Tier.id.in_(tier_ids)))
        bundles = {tier_id: units_of(items) for tier_id, items in found}
    product_ids: set[uuid.UUID] = set()
    for kind, ref_id, variant, _quantity, _add_on in lines:
        if kind == "tier":
            product_ids.update(uuid.UUID(key) for key in variant)
        elif variant:
            product_ids.add(ref_id)
    variants: dict[tuple[uuid.UUID, tuple[tuple[str, str], ...]], tuple[uuid.UUID, str]] = {}
    product_skus: dict[uuid.UUID, str] = {}
    if product_ids:
        rows = await session.execute(
            select(ProductVariant.id, ProductVariant.product_id, ProductVariant.choice, ProductVariant.sku).where(
                ProductVariant.product_id.in_(product_ids)
            )
        )
        variants = {(product_id, choice_key(choice)): (ident, sku) for ident, product_id, choice, sku in rows}
        found_skus = await session.execute(select(Product.id, Product.sku).where(Product.id.in_(product_ids)))
        product_skus = {product_id: sku for product_id, sku in found_skus}
    by_variant: dict[uuid.UUID, int] = {}
    by_add_on: dict[uuid.UUID, int] = {}
    for kind, ref_id, variant, quantity, add_on_id in lines:
        if kind == "tier":
            bundle = bundles.get(ref_id, {})
            for key, choice in variant.items():
                product_id = uuid.UUID(key)
                found_variant = variants.get((product_id, choice_key(choice)))
                count = bundle.get(product_skus.get(product_id, ""), 0) * quantity
                if found_variant is not None and count:
                    by_variant[found_variant[0]] = by_variant.get(found_variant[0], 0) + count
            continue
        if add_on_id is not None:
            by_add_on[add_on_id] = by_add_on.get(add_on_id, 0) + quantity
        if variant:
            found_variant = variants.get((ref_id, choice_key(variant)))
            if found_variant is not None:
                by_variant[found_variant[0]] = by_variant.get(found_variant[0], 0) + quantity
    return by_variant, by_add_on


async def give_back_pledge_units(session: AsyncSession, pledge_ids: Sequence[uuid.UUID]) -> None:
    """Frees the units the pledges held (they have just ended, or are about to be re-priced), in the order taken."""
    by_variant, by_add_on = await held_units(session, pledge_ids)
    for variant_id in sorted(by_variant):
        await give_back_units(session, ProductVariant, variant_id, by_variant[variant_id])
    for add_on_id in sorted(by_add_on):
        await give_back_units(session, AddOn, add_on_id, by_add_on[add_on_id])
