"""The home page: what Kindling is, the campaigns backers can pledge to right now, and some from beyond the busiest
city (campaigns.regions), so that a maker in Foshan is seen as well as one in Shenzhen."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import regions, service
from service.pages import viewer
from service.pages.campaigns import campaign_cards
from service.web import render, settings_of, uow

HOME_CARDS = 12
BEYOND_CARDS = 4


async def live_campaign_cards(
    session: AsyncSession, *, day_seconds: int, space_id: uuid.UUID | None = None, limit: int = HOME_CARDS
) -> list[dict[str, Any]]:
    """Live campaigns (of one space, if given) as `_campaign_card.html` draws them, newest first."""
    details, _next = await service.list_campaigns(session, None, status="live", space_id=space_id, limit=limit)
    return await campaign_cards(session, details, day_seconds=day_seconds)


async def home(request: Request) -> Response:
    async with uow(request) as session:
        await viewer(request, session)
        day_seconds = settings_of(request).day_seconds
        cards = await live_campaign_cards(session, day_seconds=day_seconds)
        busiest = regions.busiest_city(await regions.live_by_region(session))
        beyond: list[dict[str, Any]] = []
        if busiest is not None:
            outside = await regions.spaces_outside(session, busiest)
            details, _more = await service.discover_campaigns(
                session, None, tab="live", sort="newest", space_ids=outside, limit=BEYOND_CARDS
            )
            beyond = await campaign_cards(session, details, day_seconds=day_seconds)
    context = {"cards": cards, "beyond": beyond, "busiest_city": busiest.city if busiest else None}
    return render(request, "home.html", context)


routes = [Route("/", home, methods=["GET"])]
