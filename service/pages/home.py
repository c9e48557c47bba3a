"""The home page: what Kindling is, and the campaigns backers can pledge to right now."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import service
from service.pages import viewer
from service.pages.campaigns import campaign_cards
from service.web import render, settings_of, uow

HOME_CARDS = 12


async def live_campaign_cards(
    session: AsyncSession, *, day_seconds: int, space_id: uuid.UUID | None = None, limit: int = HOME_CARDS
) -> list[dict[str, Any]]:
    """Live campaigns (of one space, if given) as `_campaign_card.html` draws them, newest first."""
    details, _next = await service.list_campaigns(session, None, status="live", space_id=space_id, limit=limit)
    return await campaign_cards(session, details, day_seconds=day_seconds)


async def home(request: Request) -> Response:
    async with uow(request) as session:
        await viewer(request, session)
        cards = await live_campaign_cards(session, day_seconds=settings_of(request).day_seconds)
    return render(request, "home.html", {"cards": cards})


routes = [Route("/", home, methods=["GET"])]
