"""What a pledge contains, in SKUs × quantity: the one place that says it.

A pledge's goods are its `tier` lines (each the tier's bundle of products, a product with options counted under the
SKU of the variant the backer chose) and its `addon` lines (one SKU each), times their quantities. Fulfillment (the
planner, shipping lists, address requests), mails and pages read these functions, never a tier's items.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ARRAY, ColumnElement, Text, Uuid, and_, bindparam, cast, exists, func, or_, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.models import Pledge, Product, ProductVariant, Tier
from campaigns.pledges.models import GOODS_KINDS, PledgeItem
from campaigns.variants import choice_key

if TYPE_CHECKING:
    from campaigns.pledges.pricing import ResolvedChoice

Contents = Mapping[str, int]


def units_of(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """`[{sku, quantity}]` as a tier stores it becomes `{sku: quantity}`."""
    units: dict[str, int] = {}
    for item in items:
        units[str(item["sku"])] = units.get(str(item["sku"]), 0) + int(item["quantity"])
    return units


def choice_contents(tier: Tier | None, resolved: ResolvedChoice) -> dict[str, int]:
    """What a choice not yet a pledge would contain, counted as `pledge_contents` counts a pledge's lines: the tier's
    bundle with each optioned product under its chosen variant's SKU, and each add-on's SKU × its quantity. What
    shipping by weight weighs before the pledge exists (campaigns/pledges/shipping.py)."""
    units = units_of(tier.items) if tier is not None else {}
    for variant in resolved.tier_variants:
        if variant.product_sku in units:
            units[variant.sku] = units.get(variant.sku, 0) + units.pop(variant.product_sku)
    for add_on in resolved.add_ons:
        units[add_on.sku] = units.get(add_on.sku, 0) + add_on.quantity
    return units


async def pledge_contents(session: AsyncSession, pledge_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Contents]:
    """Each of `pledge_ids` that contains something, with its units per SKU; pledges that contain nothing (a bonus
    alone, a reward of no products) are left out.

    Read-only: pledges whose goods lines are the same share one mapping. PostgreSQL gives each pledge its lines as
    one JSON text (`goods_lines`), and a campaign of 100,000 backers has a few dozen distinct ones
    (bench/fulfillment.py): each is decoded and counted once (`contents_of_lines`), not once per backer. The ids go as
    one array, joined as a table: its lines are found by the index or a hash join whatever PostgreSQL believes of the
    tables' sizes (a semi-join over freshly loaded pledges was once planned as a nested loop of two scans;
    `= ANY(array)` scans the array for every line)."""
    if not pledge_ids:
        return {}
    connection = await session.connection()  # Core rows: one per pledge, tens of thousands for a campaign
    rows = (await connection.execute(_GOODS_LINES, {"pledge_ids": list(pledge_ids)})).all()
    made = await contents_of_lines(session, {row[1] for row in rows})
    return {pledge_id: made[lines] for pledge_id, lines in rows if made[lines]}


def goods_lines() -> ColumnElement[str | None]:
    """SQL, an aggregate over `pledge_items` joined to `pledges` and grouped by pledge: the pledge's goods lines as
    one JSON text, `[[kind, ref_id, sku, quantity, variant], ...]` in their order (None when it has none), which
    `contents_of_lines` reads. Lets a query that lists pledges (the planner's, a shipping list's) bring each one's
    contents along in the same pass. `json`, not `jsonb`: the text is made as it is written, not parsed first."""
    line = func.json_build_array(
        PledgeItem.kind, PledgeItem.ref_id, PledgeItem.sku, PledgeItem.quantity, PledgeItem.variant
    )
    in_order = func.json_agg(aggregate_order_by(line, PledgeItem.position))
    return cast(in_order.filter(PledgeItem.kind.in_(GOODS_KINDS)), Text)


async def contents_of_lines(session: AsyncSession, texts: Iterable[str | None]) -> dict[str | None, Contents]:
    """Each distinct text `goods_lines` gave as the units per SKU it says (None, no goods lines: nothing): each is
    decoded and counted once, with one query for the tiers' bundles and two for the variants chosen."""
    kinds: dict[str, list[Any]] = {lines: json.loads(lines) for lines in set(texts) if lines is not None}
    tier_ids = {uuid.UUID(ref) for lines in kinds.values() for kind, ref, *_ in lines if kind == "tier"}
    bundles: dict[uuid.UUID | None, dict[str, int]] = {}
    if tier_ids:
        found = await session.execute(select(Tier.id, Tier.items).where(Tier.id.in_(tier_ids)))
        bundles = {tier_id: units_of(items) for tier_id, items in found}
    chosen = await _bundles_as_chosen(
        session,
        bundles,
        [
            (uuid.UUID(ref), variant)
            for lines in kinds.values()
            for kind, ref, _sku, _quantity, variant in lines
            if kind == "tier" and variant
        ],
    )
    made: dict[str | None, Contents] = {None: {}}
    made.update({text: _units_of_lines(lines, bundles, chosen) for text, lines in kinds.items()})
    return made


# Each pledge's goods lines as `goods_lines` gives them.
_GOODS_LINES = text(
    f"""
    SELECT i.pledge_id,
           json_agg(json_build_array(i.kind, i.ref_id, i.sku, i.quantity, i.variant) ORDER BY i.position)::text
    FROM unnest(:pledge_ids) AS wanted (pledge_id)
    JOIN pledge_items i ON i.pledge_id = wanted.pledge_id
    WHERE i.kind IN ({", ".join(repr(kind) for kind in GOODS_KINDS)})
    GROUP BY i.pledge_id
    """
).bindparams(bindparam("pledge_ids", type_=ARRAY(Uuid())))


def _units_of_lines(
    lines: Sequence[Any],
    bundles: Mapping[uuid.UUID | None, Mapping[str, int]],
    chosen: Mapping[tuple[uuid.UUID | None, Frozen], Mapping[str, int]],
) -> dict[str, int]:
    """A pledge's units per SKU from its goods lines: a tier line's bundle (as chosen) times its quantity, an add-on
    line's SKU."""
    units: dict[str, int] = {}
    for kind, ref, sku, quantity, variant in lines:
        if kind == "tier":
            tier_id = uuid.UUID(ref)
            bundle = chosen[(tier_id, _frozen(variant))] if variant else bundles.get(tier_id, {})
            added = {tier_sku: count * quantity for tier_sku, count in bundle.items()}
        else:
            added = {sku: quantity} if sku is not None else {}
        for line_sku, count in added.items():
            units[line_sku] = units.get(line_sku, 0) + count
    return units


Frozen = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


def _frozen(variant: Mapping[str, Any]) -> Frozen:
    """A tier line's {product id: {option: value}} as a key."""
    return tuple(sorted((str(product), choice_key(dict(choice))) for product, choice in variant.items()))


async def _bundles_as_chosen(
    session: AsyncSession,
    bundles: Mapping[uuid.UUID | None, Mapping[str, int]],
    tier_lines: Sequence[tuple[uuid.UUID | None, Mapping[str, Any]]],
) -> dict[tuple[uuid.UUID | None, Frozen], dict[str, int]]:
    """Each distinct (tier, variants chosen) among the lines as its bundle with every optioned product's SKU replaced
    by its chosen variant's: a campaign of 100,000 backers has as many of these as it has combinations chosen, and
    two queries find them all."""
    wanted = {(tier_id, _frozen(variant)): variant for tier_id, variant in tier_lines if variant}
    if not wanted:
        return {}
    product_ids = {uuid.UUID(product) for variant in wanted.values() for product in variant}
    products = await session.execute(select(Product.id, Product.sku).where(Product.id.in_(product_ids)))
    product_skus = {str(product_id): sku for product_id, sku in products}
    found = await session.execute(
        select(ProductVariant.product_id, ProductVariant.choice, ProductVariant.sku).where(
            ProductVariant.product_id.in_(product_ids)
        )
    )
    variant_skus = {(str(product_id), choice_key(choice)): sku for product_id, choice, sku in found}
    chosen: dict[tuple[uuid.UUID | None, Frozen], dict[str, int]] = {}
    for (tier_id, frozen), _variant in wanted.items():
        bundle = dict(bundles.get(tier_id, {}))
        for product, choice in frozen:
            product_sku = product_skus.get(product)
            variant_sku = variant_skus.get((product, choice))
            if product_sku is None or variant_sku is None or product_sku not in bundle:
                continue  # the catalogue is fixed once live; a line naming what is gone keeps the product's SKU
            bundle[variant_sku] = bundle.get(variant_sku, 0) + bundle.pop(product_sku)
        chosen[(tier_id, frozen)] = bundle
    return chosen


async def contents_of(session: AsyncSession, pledge_id: uuid.UUID) -> Contents:
    """One pledge's units per SKU ({} when it contains nothing)."""
    return (await pledge_contents(session, [pledge_id])).get(pledge_id, {})


def contains_goods() -> ColumnElement[bool]:
    """SQL, correlated to `pledges`: the pledge contains something to ship."""
    bundle_of_products = (
        select(Tier.id).where(Tier.id == PledgeItem.ref_id, func.jsonb_array_length(Tier.items) > 0).exists()
    )
    return exists().where(
        PledgeItem.pledge_id == Pledge.id,
        or_(PledgeItem.kind == "addon", and_(PledgeItem.kind == "tier", bundle_of_products)),
    )


async def campaign_units(session: AsyncSession, campaign_id: uuid.UUID, statuses: Iterable[str]) -> dict[str, int]:
    """Units per SKU over the campaign's pledges in `statuses`, as `pledge_contents` counts each pledge: the lines
    are summed in SQL by what they are (a handful of groups however many backers), then each group is counted as
    that function counts its line. What the maker's funding page shows moving as backers add and change."""
    rows = (
        await session.execute(
            select(
                PledgeItem.kind, PledgeItem.ref_id, PledgeItem.sku, PledgeItem.variant, func.sum(PledgeItem.quantity)
            )
            .join(Pledge, Pledge.id == PledgeItem.pledge_id)
            .where(
                Pledge.campaign_id == campaign_id,
                Pledge.status.in_(list(statuses)),
                PledgeItem.kind.in_(GOODS_KINDS),
            )
            .group_by(PledgeItem.kind, PledgeItem.ref_id, PledgeItem.sku, PledgeItem.variant)
        )
    ).all()
    tier_ids = {ref_id for kind, ref_id, _sku, _variant, _count in rows if kind == "tier"}
    bundles: dict[uuid.UUID | None, dict[str, int]] = {}
    if tier_ids:
        found = await session.execute(select(Tier.id, Tier.items).where(Tier.id.in_(tier_ids)))
        bundles = {tier_id: units_of(items) for tier_id, items in found}
    chosen = await _bundles_as_chosen(
        session, bundles, [(ref_id, variant) for kind, ref_id, _sku, variant, _count in rows if kind == "tier"]
    )
    units: dict[str, int] = {}
    for kind, ref_id, sku, variant, count in rows:
        if kind == "tier":
            bundle = chosen[(ref_id, _frozen(variant))] if variant else bundles.get(ref_id, {})
            added = {tier_sku: per * int(count) for tier_sku, per in bundle.items()}
        else:
            added = {sku: int(count)} if sku is not None else {}
        for line_sku, number in added.items():
            units[line_sku] = units.get(line_sku, 0) + number
    return units
