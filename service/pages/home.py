"""The home page: what Kindling is, and the campaigns backers can pledge to right now."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns.models import COUNTED_PLEDGE_STATUSES, Campaign, Pledge, Space
from service.pages import viewer
from service.web import render, settings_of, uow

HOME_CARDS = 12


async def live_campaign_cards(
    session: AsyncSession, *, day_seconds: int, space_id: uuid.UUID | None = None, limit: int = HOME_CARDS
) -> list[dict[str, Any]]:
    """Live campaigns as `_campaign_card.html` draws them, ending soonest first."""
    totals = (
        select(
            Pledge.campaign_id,
            func.coalesce(func.sum(Pledge.amount), 0).label("pledged"),
            func.count().label("backers"),
        )
        .where(Pledge.status.in_(COUNTED_PLEDGE_STATUSES))
        .group_by(Pledge.campaign_id)
        .subquery()
    )
    query = (
        select(Campaign, Space.name, totals.c.pledged, totals.c.backers)
        .join(Space, Space.id == Campaign.space_id)
        .outerjoin(totals, totals.c.campaign_id == Campaign.id)
        .where(Campaign.status == "live")
        .order_by(Campaign.ends_at.asc().nulls_last(), Campaign.id)
        .limit(limit)
    )
    if space_id is not None:
        query = query.where(Campaign.space_id == space_id)
    now = datetime.now(UTC)
    cards = []
    for campaign, space_name, pledged, backers in (await session.execute(query)).all():
        seconds_left = (campaign.ends_at - now).total_seconds() if campaign.ends_at else 0
        cards.append(
            {
                "title": campaign.title,
                "summary": campaign.summary,
                "url": f"/campaigns/{campaign.slug}",
                "cover_url": None,
                "space_name": space_name,
                "pledged": int(pledged or 0),
                "goal": campaign.goal,
                "currency": campaign.currency,
                "backers": int(backers or 0),
                "days_left": max(0, math.ceil(seconds_left / day_seconds)),
            }
        )
    return cards


async def home(request: Request) -> Response:
    async with uow(request) as session:
        await viewer(request, session)
        cards = await live_campaign_cards(session, day_seconds=settings_of(request).day_seconds)
    return render(request, "home.html", {"cards": cards})


routes = [Route("/", home, methods=["GET"])]
