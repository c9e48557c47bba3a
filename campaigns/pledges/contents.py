"""What a pledge contains, in SKUs × quantity: the one place that says it.

A pledge's goods are its `tier` lines (each the tier's bundle of products) and its `addon` lines (one SKU each), times
their quantities. Fulfillment (the planner, shipping lists, address requests), mails and pages read these functions,
never a tier's items.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Uuid, and_, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.models import Pledge, Tier
from campaigns.pledges.models import GOODS_KINDS, PledgeItem

Contents = Mapping[str, int]


def units_of(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """`[{sku, quantity}]` as a tier stores it becomes `{sku: quantity}`."""
    units: dict[str, int] = {}
    for item in items:
        units[str(item["sku"])] = units.get(str(item["sku"]), 0) + int(item["quantity"])
    return units


async def pledge_contents(session: AsyncSession, pledge_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Contents]:
    """Each of `pledge_ids` that contains something, with its units per SKU; pledges that contain nothing (a bonus
    alone, a reward of no products) are left out.

    Read-only: pledges of one tier and nothing else share that tier's mapping (a campaign of 100,000 backers has a
    handful of distinct contents, bench/fulfillment.py). The ids go as one array, joined as a table: its lines are
    found by the index or a hash join whatever PostgreSQL believes of the tables' sizes (a semi-join over freshly
    loaded pledges was once planned as a nested loop of two scans; `= ANY(array)` scans the array for every line)."""
    wanted = (
        func.unnest(bindparam("pledge_ids", list(pledge_ids), type_=ARRAY(Uuid())))
        .table_valued("pledge_id")
        .render_derived()
    )
    rows = await session.execute(
        select(PledgeItem.pledge_id, PledgeItem.kind, PledgeItem.ref_id, PledgeItem.sku, PledgeItem.quantity)
        .join(wanted, wanted.c.pledge_id == PledgeItem.pledge_id)
        .where(PledgeItem.kind.in_(GOODS_KINDS))
    )
    lines = rows.all()
    tier_ids = {ref_id for _pledge, kind, ref_id, _sku, _quantity in lines if kind == "tier"}
    bundles: dict[uuid.UUID | None, dict[str, int]] = {}
    if tier_ids:
        found = await session.execute(select(Tier.id, Tier.items).where(Tier.id.in_(tier_ids)))
        bundles = {tier_id: units_of(items) for tier_id, items in found}
    contents: dict[uuid.UUID, dict[str, int]] = {}
    own: set[uuid.UUID] = set()  # pledges whose mapping is theirs alone, so lines may be added to it
    for pledge_id, kind, ref_id, sku, quantity in lines:
        if kind == "tier":
            bundle = bundles.get(ref_id, {})
            if quantity == 1 and pledge_id not in contents:
                contents[pledge_id] = bundle
                continue
            added = {tier_sku: count * quantity for tier_sku, count in bundle.items()}
        else:
            added = {sku: quantity} if sku is not None else {}
        if pledge_id not in own:
            contents[pledge_id] = dict(contents.get(pledge_id, {}))
            own.add(pledge_id)
        units = contents[pledge_id]
        for line_sku, count in added.items():
            units[line_sku] = units.get(line_sku, 0) + count
    return {pledge_id: units for pledge_id, units in contents.items() if units}


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
