"""A campaign's gallery one picture at a time: the page a thumbnail links to, the picture large with the previous and
the next. With JavaScript the same links open an overlay on the campaign page (static/js/gallery.js) instead."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from campaigns import service
from campaigns.errors import NotFound
from campaigns.images import image_url
from service.pages import viewer
from service.web import render, uow


def picture_path(slug: str, number: int) -> str:
    return f"/campaigns/{slug}/pictures/{number}"


async def picture(request: Request) -> Response:
    ref = str(request.path_params["slug"])
    typed = str(request.path_params["number"])
    async with uow(request) as session:
        detail = await service.campaign_detail(session, ref, await viewer(request, session))
    campaign, gallery = detail.campaign, detail.gallery
    number = int(typed) if typed.isascii() and typed.isdigit() and len(typed) <= 4 else 0
    if not 1 <= number <= len(gallery):
        raise NotFound("The campaign has no picture of that number.")
    if ref != campaign.slug:  # reached by id: one address per picture
        return RedirectResponse(picture_path(campaign.slug, number), status_code=301)
    image = gallery[number - 1]
    context = {
        "campaign": {"slug": campaign.slug, "title": campaign.title, "url": f"/campaigns/{campaign.slug}"},
        "picture": {"url": image_url(image), "width": image.width, "height": image.height},
        "number": number,
        "count": len(gallery),
        "previous_url": picture_path(campaign.slug, number - 1) if number > 1 else None,
        "next_url": picture_path(campaign.slug, number + 1) if number < len(gallery) else None,
    }
    return render(request, "campaigns/picture.html", context)


routes = [Route("/campaigns/{slug}/pictures/{number}", picture, methods=["GET"])]
