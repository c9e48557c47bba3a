"""Where the campaigns are: live campaigns counted per country, province and city of their sponsoring spaces, so that
discovery reaches beyond the busiest city (about 90 % of Guangdong's makers are in Shenzhen)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, distinct, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.models import Campaign, Space


@dataclass(frozen=True)
class RegionCount:
    """One city with makerspaces: how many, and how many live campaigns they sponsor."""

    country: str
    province: str
    city: str
    spaces: int
    live: int


async def live_by_region(session: AsyncSession) -> list[RegionCount]:
    """Every city that has a space, with its live campaigns, busiest first (then by name), in one query."""
    live = func.count(Campaign.id).filter(Campaign.status == "live")
    rows = await session.execute(
        select(Space.country, Space.province, Space.city, func.count(distinct(Space.id)), live)
        .outerjoin(Campaign, Campaign.space_id == Space.id)
        .group_by(Space.country, Space.province, Space.city)
        .order_by(live.desc(), func.lower(Space.city), Space.province, Space.country)
    )
    return [RegionCount(country, province, city, int(spaces), int(n)) for country, province, city, spaces, n in rows]


def busiest_city(regions: Sequence[RegionCount]) -> RegionCount | None:
    """The city with the most live campaigns (the first of equals, in the order given); None when none has any."""
    busiest = max(regions, key=lambda region: region.live, default=None)
    return busiest if busiest is not None and busiest.live > 0 else None


def province_totals(regions: Sequence[RegionCount]) -> list[tuple[str, str, int]]:
    """(country, province, live campaigns) per province that has a name, busiest first."""
    totals: dict[tuple[str, str], int] = {}
    for region in regions:
        if region.province:
            key = (region.country, region.province)
            totals[key] = totals.get(key, 0) + region.live
    return sorted(((c, p, n) for (c, p), n in totals.items()), key=lambda item: (-item[2], item[1].casefold()))


def in_region(*, province: str | None = None, city: str | None = None) -> list[ColumnElement[bool]]:
    """SQL conditions on Space for a province and a city as people type them: either case, spaces around them."""
    conditions: list[ColumnElement[bool]] = []
    if province:
        conditions.append(func.lower(Space.province) == province.strip().lower())
    if city:
        conditions.append(func.lower(Space.city) == city.strip().lower())
    return conditions


async def spaces_outside(session: AsyncSession, region: RegionCount) -> list[uuid.UUID]:
    """The spaces in any other city than `region`."""
    same = and_(Space.country == region.country, Space.province == region.province, Space.city == region.city)
    return list(await session.scalars(select(Space.id).where(not_(same))))
