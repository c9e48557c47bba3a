"""The campaign's backers for its maker and the sponsoring space's operators: the list of campaigns.backers with its
filters and search as a GET form, a card per backer at phone width, and the CSV downloads (the API's own, which take
the session cookie)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import backers
from campaigns.backers import LISTED_STATUSES, SEARCH_LIMIT, Backer, BackerFilter
from campaigns.errors import InvalidInput
from campaigns.pledges.lifecycle import PledgeStatus
from service.i18n import gettext as _
from service.pages import country_name, viewer
from service.pages.my_pledges import status_badge, status_label
from service.web import redirect, render, uow

ROWS_PER_PAGE = 50
FILTERS = ("tier", "status", "country", "q")


def _messages() -> dict[str, str]:
    return {
        "tier": _("Choose one of the campaign's tiers."),
        "status": _("Choose one of the statuses in the list."),
        "country": _("Type a two-letter country code, such as CN or US."),
        "q": _("Search for at most %(num)d characters.") % {"num": SEARCH_LIMIT},
        "cursor": _("That page of the list no longer exists; start from the first."),
    }


def _typed(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip()[: SEARCH_LIMIT + 1] for name in FILTERS}


def _backer_view(backer: Backer) -> dict[str, Any]:
    return {
        "name": backer.name,
        "email": backer.email,
        "tier": backer.tier_title or _("No reward"),
        "contents": ", ".join(f"{sku} × {quantity}" for sku, quantity in sorted(backer.items.items()) if quantity),
        "status": status_label(backer.status),
        "badge": status_badge(backer.status),
        "amount": backer.amount,
        "currency": backer.currency,
        "pledged_at": backer.pledged_at,
        "charged_at": backer.charged_at,
        "country": country_name(backer.country) if backer.country else "",
        "address": backer.address,
    }


async def backer_list(request: Request) -> Response:
    slug = str(request.path_params["slug"])
    typed = _typed(request)
    cursor = request.query_params.get("cursor")
    narrowed = BackerFilter(
        tier=typed["tier"] or None,
        status=typed["status"] or None,
        country=typed["country"].upper() or None,
        search=typed["q"] or None,
    )
    errors: dict[str, str] = {}
    async with uow(request) as session:
        user = await viewer(request, session)
        if user is None:
            return redirect("/login?next=" + quote(request.url.path))
        try:
            page = await backers.list_backers(session, slug, user, narrowed, limit=ROWS_PER_PAGE, cursor=cursor)
        except InvalidInput as error:
            errors = {problem.field: _messages().get(problem.field, problem.message) for problem in error.errors}
            # The form again with its messages, and no list: the campaign and its tiers are all the page needs.
            page = await backers.list_backers(session, slug, user, BackerFilter(), limit=1)
    campaign = page.campaign
    filters = {name: value for name, value in typed.items() if value}
    api = f"/api/v1/campaigns/{campaign.id}"
    context = {
        "campaign": {"slug": campaign.slug, "title": campaign.title},
        "manage": "maker" in page.roles,
        "home": f"/maker/campaigns/{campaign.slug}"
        if "maker" in page.roles
        else f"/operator/campaigns/{campaign.slug}",
        "typed": typed,
        "errors": errors,
        "tiers": [{"id": str(tier.id), "title": tier.title} for tier in page.tiers],
        "statuses": [(status.value, status_label(status)) for status in PledgeStatus if status in LISTED_STATUSES],
        "backers": [] if errors else [_backer_view(backer) for backer in page.backers],
        "sees_addresses": page.sees_addresses,
        "filtered": bool(filters),
        "more_url": f"{request.url.path}?{urlencode(filters | {'cursor': page.next_cursor})}"
        if page.next_cursor and not errors
        else None,
        "first_url": f"{request.url.path}?{urlencode(filters)}" if cursor and not errors else None,
        "backers_csv": f"{api}/backers.csv" + (f"?{urlencode(filters)}" if filters and not errors else ""),
        "addresses_csv": f"{api}/addresses.csv",
        "transactions_csv": f"{api}/ledger/transactions.csv",
    }
    return render(request, "backers/list.html", context, status=422 if errors else 200)


routes = [
    Route("/maker/campaigns/{slug}/backers", backer_list, methods=["GET"]),
    Route("/operator/campaigns/{slug}/backers", backer_list, methods=["GET"]),
]
