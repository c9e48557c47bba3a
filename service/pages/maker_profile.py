"""A maker's public page: their name, their public campaigns and their delivery record; nothing private."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import service
from campaigns.makers import public_maker
from fulfillment.delivery_record import maker_delivery_record
from service.pages import viewer
from service.pages.campaigns import campaign_cards
from service.pages.delivery_words import record_parts
from service.web import render, settings_of, uow

MAKER_CARDS = 60


async def maker_page(request: Request) -> Response:
    async with uow(request) as session:
        await viewer(request, session)
        maker = await public_maker(session, request.path_params["maker_id"])
        details, _next = await service.list_campaigns(session, None, maker_id=maker.id, limit=MAKER_CARDS)
        cards = await campaign_cards(session, details, day_seconds=settings_of(request).day_seconds)
        record = await maker_delivery_record(session, maker.id)
    context = {
        "maker": {"name": maker.name, "url": f"/makers/{maker.id}"},
        "cards": cards,
        "record": record_parts(record),
    }
    return render(request, "makers/profile.html", context)


routes = [Route("/makers/{maker_id}", maker_page, methods=["GET"])]
