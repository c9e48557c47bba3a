"""The public campaign pages: discover the live campaigns, and one campaign with its tiers and its sponsor's vetting.

What a campaign shows here comes from campaigns.service.campaign_detail / list_campaigns, the same functions the JSON
API answers with; the helpers below only put it into words and figures for people (and are shared with the maker's
and the operator's pages).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_skeleton
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from campaigns import regions, service, spaces, updates
from campaigns.campaign_schemas import CHECKLIST_ITEMS, CampaignListQuery
from campaigns.images import image_url
from campaigns.languages import Written, version_for
from campaigns.lifecycle import PUBLIC_STATUSES
from campaigns.matching import campaign_match
from campaigns.models import Campaign, CampaignImage, CampaignUpdate, Review, Space, Tier, User
from campaigns.pledges.lifecycle import COUNTED_PLEDGE_STATUSES
from campaigns.story import render_story
from campaigns.transparency import log as design_log
from fulfillment.delivery_record import clock_changes_record_at, maker_delivery_record, space_delivery_record
from service.i18n import babel_locale, current_locale
from service.i18n import gettext as _
from service.page_cache import CachedPage, PageCache
from service.pages import country_name, fee_percent, validate_form, viewer
from service.pages.catalog_views import (
    FEW_LEFT,
    add_on_views,
    product_name,
    products_with_options,
    shipping_view,
    tier_title,
)
from service.pages.delivery_words import record_parts
from service.pages.preorder_offers import preorder_section
from service.web import SESSION_KEY, render, settings_of, uow

CARDS_PER_PAGE = 24
UPDATES_SHOWN = 10


# Words and figures shared by the campaign pages


def status_label(status: str) -> str:
    labels = {
        "draft": _("Draft"),
        "in_review": _("In review"),
        "approved": _("Approved"),
        "rejected": _("Not approved"),
        "live": _("Live"),
        "successful": _("Successful"),
        "unsuccessful": _("Not funded"),
        "funded": _("Funded"),
        "fulfilling": _("Making rewards"),
        "fulfilled": _("Rewards delivered"),
        "suspended": _("Suspended"),
    }
    return labels.get(status, status)


def sponsor_label(status: str, space_name: str) -> str:
    """'Vetted by' only once the space has approved the campaign."""
    if status in ("draft", "in_review", "rejected"):
        return _("Makerspace: %(space)s") % {"space": space_name}
    return _("Vetted by %(space)s") % {"space": space_name}


def decision_label(decision: str) -> str:
    labels = {"approve": _("Approved"), "request_changes": _("Changes requested"), "reject": _("Not approved")}
    return labels.get(decision, decision)


def checklist_labels() -> dict[str, str]:
    return {
        "prototype": _("Prototype shown"),
        "bill_of_materials": _("Bill of materials costed"),
        "manufacturing_quote": _("Manufacturing partner quoted"),
        "certifications": _("Certifications planned"),
    }


def checklist_view(checklist: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each vetting item with its answer: True (checked), False (checked and not there), None (not answered)."""
    labels = checklist_labels()
    return [{"key": item, "label": labels[item], "answer": checklist.get(item)} for item in CHECKLIST_ITEMS]


def delivery_month(month: str) -> str:
    """'2027-03' as 'March 2027' / '2027年3月'."""
    try:
        year, number = (int(part) for part in month.split("-"))
        return format_skeleton("yMMMM", date(year, number, 1), locale=babel_locale())
    except ValueError:
        return month


def days_left(campaign: Campaign, day_seconds: int, now: datetime | None = None) -> int:
    """Whole campaign days until the deadline, rounded up (a campaign day is KINDLING_DAY_SECONDS long)."""
    if campaign.ends_at is None:
        return campaign.duration_days
    seconds = (campaign.ends_at - (now or datetime.now(UTC))).total_seconds()
    return max(0, math.ceil(seconds / day_seconds))


def percent_funded(pledged: int, goal: int) -> int:
    return pledged * 100 // goal if goal > 0 else 0


def space_view(space: Space, campaign: Campaign | None = None) -> dict[str, Any]:
    """The sponsoring space; with `campaign`, the fee is the one that campaign launched with."""
    fee_bps = space.sponsor_fee_bps if campaign is None else spaces.campaign_sponsor_fee_bps(campaign, space)
    return {
        "name": space.name,
        "url": f"/spaces/{space.slug}",
        "city": space.city,
        "country": country_name(space.country),
        "fee": fee_percent(fee_bps),
    }


def shown(field: str, original: str, language: str, translations: Mapping[str, Any] | None = None) -> Written:
    """A maker's or an operator's text in the reader's language when there is a version in it, else as written."""
    return version_for(current_locale.get(), field, original, language, translations)


def campaign_text(campaign: Campaign, field: str) -> Written:
    return shown(field, getattr(campaign, field), campaign.language, campaign.translations)


def review_view(review: Review | None, reviewers: Mapping[uuid.UUID, User] | None = None) -> dict[str, Any] | None:
    if review is None:
        return None
    reviewer = (reviewers or {}).get(review.reviewer_id)
    return {
        "decision": review.decision,
        "decision_label": decision_label(review.decision),
        "notes": shown("notes", review.notes, review.language),
        "checklist": checklist_view(review.checklist),
        "decided_at": review.created_at,
        "reviewer": reviewer.name if reviewer else None,
    }


def tier_view(
    tier: Tier, *, currency: str, product_names: Mapping[str, str], back_url: str | None = None
) -> dict[str, Any]:
    limited = tier.quantity_limit is not None
    remaining = tier.remaining if limited else None
    description = shown("description", tier.description, tier.language, tier.translations)
    return {
        "id": str(tier.id),
        "title": tier_title(tier),
        "language": tier.language,
        "description_language": description.language,
        "description_html": Markup(render_story(description)),  # noqa: S704 - sanitised by render_story
        "price": tier.price,
        "currency": currency,
        "limited": limited,
        "quantity_limit": tier.quantity_limit,
        "remaining": remaining,
        "sold_out": limited and remaining == 0,
        "few_left": limited and remaining is not None and 0 < remaining <= FEW_LEFT,
        "contents": [
            {"sku": item["sku"], "quantity": int(item["quantity"]), "name": product_names.get(item["sku"], item["sku"])}
            for item in tier.items
        ],
        "shipping": shipping_view(tier.shipping),
        "estimated_delivery": delivery_month(tier.estimated_delivery),
        "back_url": back_url if back_url and not (limited and remaining == 0) else None,
    }


async def spaces_by_id(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Space]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {space.id: space for space in await session.scalars(select(Space).where(Space.id.in_(wanted)))}


async def users_by_id(session: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, User]:
    wanted = {ident for ident in ids if ident is not None}
    if not wanted:
        return {}
    return {user.id: user for user in await session.scalars(select(User).where(User.id.in_(wanted)))}


def campaign_card(detail: service.CampaignDetail, space: Space | None, *, day_seconds: int) -> dict[str, Any]:
    """One campaign as templates/_campaign_card.html draws it."""
    campaign = detail.campaign
    return {
        "title": campaign_text(campaign, "title"),
        "summary": campaign_text(campaign, "summary"),
        "url": f"/campaigns/{campaign.slug}",
        "cover_url": image_url(detail.cover) if detail.cover else None,
        "space_name": space.name if space else "",
        "pledged": detail.pledged,
        "goal": campaign.goal,
        "currency": campaign.currency,
        "backers": detail.backers,
        "days_left": days_left(campaign, day_seconds),
    }


async def campaign_cards(
    session: AsyncSession, details: Sequence[service.CampaignDetail], *, day_seconds: int
) -> list[dict[str, Any]]:
    sponsors = await spaces_by_id(session, (detail.campaign.space_id for detail in details))
    return [
        campaign_card(detail, sponsors.get(detail.campaign.space_id), day_seconds=day_seconds) for detail in details
    ]


# Discover


async def every_space(session: AsyncSession) -> list[Space]:
    found: list[Space] = []
    cursor: str | None = None
    while True:
        page, cursor = await spaces.list_spaces(session, limit=200, cursor=cursor)
        found.extend(page)
        if cursor is None:
            return sorted(found, key=lambda space: space.name.casefold())


def discover_tabs() -> dict[str, str]:
    return {"live": _("Live"), "funded": _("Funded"), "recent": _("Recently successful")}


def discover_sorts() -> dict[str, str]:
    return {"newest": _("Newest"), "ending": _("Ending soon"), "backed": _("Most backed")}


def _page_number(value: str | None) -> int:
    """The page asked for; anything but a sensible whole number is the first page."""
    return (
        int(value)
        if value and value.isascii() and value.isdigit() and len(value) <= 5 and 0 < int(value) <= 10_000
        else 1
    )


async def discover(request: Request) -> Response:
    params = request.query_params
    wanted = {
        "q": (params.get("q") or "").strip(),
        "space": params.get("space") or "",
        "province": params.get("province") or "",
        "city": params.get("city") or "",
    }
    tab = params.get("tab") if params.get("tab") in service.DISCOVER_TABS else "live"
    sort = params.get("sort") if params.get("sort") in service.DISCOVER_SORTS else "newest"
    page = _page_number(params.get("page"))
    checked = validate_form(CampaignListQuery, {"q": wanted["q"]})
    errors = checked if isinstance(checked, dict) else {}
    q = checked.q if isinstance(checked, CampaignListQuery) else None
    async with uow(request) as session:
        user = await viewer(request, session)
        all_spaces = await every_space(session)
        chosen = all_spaces
        if wanted["space"]:
            chosen = [space for space in chosen if space.slug == wanted["space"]]
        if wanted["province"]:
            chosen = [space for space in chosen if space.province.casefold() == wanted["province"].casefold()]
        if wanted["city"]:
            chosen = [space for space in chosen if space.city.casefold() == wanted["city"].casefold()]
        narrowed = bool(wanted["space"] or wanted["province"] or wanted["city"])
        places = await regions.live_by_region(session)
        # A search that cannot run shows its message, not every campaign.
        details: list[service.CampaignDetail] = []
        more = False
        if not errors:
            details, more = await service.discover_campaigns(
                session,
                user,
                tab=str(tab),
                sort=str(sort),
                space_ids=[space.id for space in chosen] if narrowed else None,
                q=q or None,
                limit=CARDS_PER_PAGE,
                offset=(page - 1) * CARDS_PER_PAGE,
            )
        cards = await campaign_cards(session, details, day_seconds=settings_of(request).day_seconds)
    live_in_city: dict[str, int] = {}
    for place in places:
        live_in_city[place.city] = live_in_city.get(place.city, 0) + place.live
    cities = sorted(live_in_city, key=str.casefold)
    provinces = regions.province_totals(places)
    kept = {key: value for key, value in wanted.items() if value}
    in_order = kept | ({"sort": sort} if sort != "newest" else {})
    context = {
        "cards": cards,
        "values": wanted,
        "errors": errors,
        "filtered": any(wanted.values()),
        "tab": tab,
        "sort": sort,
        "tabs": [
            (key, label, urlencode(in_order | ({"tab": key} if key != "live" else {})))
            for key, label in discover_tabs().items()
        ],
        "sorts": discover_sorts(),
        "space_options": [("", _("All makerspaces"))] + [(space.slug, space.name) for space in all_spaces],
        "province_options": [("", _("All provinces"))]
        + [(province, f"{province} ({live})") for _country, province, live in provinces],
        "city_options": [("", _("All cities"))] + [(city, f"{city} ({live_in_city[city]})") for city in cities],
        # Live campaigns per city, busiest first, each a link to its campaigns.
        "regions": [
            {"city": p.city, "province": p.province, "live": p.live, "query": urlencode({"city": p.city})}
            for p in places
            if p.live
        ],
        "next_query": urlencode(in_order | {"tab": tab, "page": page + 1}) if more else None,
    }
    return render(request, "campaigns/discover.html", context, status=422 if errors else 200)


# One campaign


def _updates_view(rows: Sequence[CampaignUpdate]) -> list[dict[str, Any]]:
    return [
        {
            "id": str(row.id),
            "title": shown("title", row.title, row.language, row.translations),
            # sanitised by render_story when it was posted
            "body_html": Markup(shown("body_html", row.body_html, row.language, row.translations)),  # noqa: S704
            "body_language": shown("body_html", row.body_html, row.language, row.translations).language,
            "posted_at": row.created_at,
            "edited_at": row.edited_at,
            "backers_only": row.visibility == "backers",
        }
        for row in rows
    ]


def campaign_view(detail: service.CampaignDetail, space: Space, maker: User, *, day_seconds: int) -> dict[str, Any]:
    """Everything the campaign page shows, from the one detail load (no query per tier)."""
    campaign = detail.campaign
    base = f"/campaigns/{campaign.slug}"
    can_back = campaign.status == "live" and "maker" not in detail.roles
    product_names = {product.sku: product_name(product) for product in detail.products}
    story = campaign_text(campaign, "description_html")
    tiers = [
        tier_view(
            tier,
            currency=campaign.currency,
            product_names=product_names,
            back_url=f"{base}/back?tier={tier.id}" if can_back else None,
        )
        for tier in detail.tiers
    ]
    return {
        "slug": campaign.slug,
        "url": base,
        "title": campaign_text(campaign, "title"),
        "summary": campaign_text(campaign, "summary"),
        "status": campaign.status,
        "status_label": status_label(campaign.status),
        "story_html": Markup(story),  # noqa: S704 - sanitised by render_story when it was saved
        "story_language": story.language,
        "cover": _image_view(detail.cover, campaign.title) if detail.cover else None,
        "gallery": [_image_view(image, campaign.title) for image in detail.gallery],
        "currency": campaign.currency,
        "pledged": detail.pledged,
        "goal": campaign.goal,
        "percent": percent_funded(detail.pledged, campaign.goal),
        "backers": detail.backers,
        "days_left": days_left(campaign, day_seconds),
        "duration_days": campaign.duration_days,
        "ends_at": campaign.ends_at,
        "launched_at": campaign.launched_at,
        "space": space_view(space, campaign),
        "space_label": sponsor_label(campaign.status, space.name),
        "maker_name": maker.name,
        # The maker's public page exists once they have a public campaign, as this one is.
        "maker_url": f"/makers/{maker.id}" if campaign.status in PUBLIC_STATUSES else None,
        "review": review_view(detail.latest_review),
        "tiers": tiers,
        "choices": products_with_options(detail),
        "add_ons": add_on_views(detail),
        "can_back": can_back,
        "back_url": f"{base}/back" if can_back else None,
        "is_maker": "maker" in detail.roles,
        # Questions and comments open once the campaign is public.
        "ask_url": f"{base}/ask" if campaign.status in PUBLIC_STATUSES and "maker" not in detail.roles else None,
        "comments_url": f"{base}/comments" if campaign.status in PUBLIC_STATUSES else None,
        "is_operator": "operator" in detail.roles,
        # Its space's operators and admins suspend it from the operator's page of the campaign.
        "suspend_url": f"/operator/campaigns/{campaign.slug}#suspend-title" if "suspend" in detail.actions else None,
    }


def _image_view(image: CampaignImage, title: str) -> dict[str, Any]:
    return {"url": image_url(image), "width": image.width, "height": image.height, "alt": title}


# Open Graph names a language with its territory.
OPEN_GRAPH_LOCALES = {"en": "en_US", "zh_CN": "zh_CN"}


def share_preview(view: Mapping[str, Any], *, base_url: str, locale: str) -> dict[str, Any]:
    """What a link to the campaign shows when shared (Open Graph and Twitter card): absolute addresses only."""
    own = OPEN_GRAPH_LOCALES.get(locale, locale)
    return {
        "url": base_url + view["url"],
        "image": base_url + view["cover"]["url"] if view["cover"] else None,
        "locale": own,
        "alternate_locales": [other for other in OPEN_GRAPH_LOCALES.values() if other != own],
    }


def _anonymous_page_cache(request: Request) -> PageCache | None:
    """The cache, when this request sees the page exactly as every anonymous visitor does (a plain GET, nobody
    signed in); the page then shows no CSRF token, no name and no flash, and its headers come from the middleware."""
    cache: PageCache | None = getattr(request.app.state, "page_cache", None)
    if cache is None or not cache.enabled or request.method != "GET" or request.url.query:
        return None
    if "authorization" in request.headers or ("session" in request.scope and request.session.get(SESSION_KEY)):
        return None
    return cache


def clock_changes_page_at(campaign: Campaign, day_seconds: int, now: datetime) -> float | None:
    """When 'days left', as shown from `now`, next changes by the clock alone (None: it stays)."""
    left = days_left(campaign, day_seconds, now)
    if campaign.ends_at is None or left <= 0:
        return None
    return campaign.ends_at.timestamp() - (left - 1) * day_seconds


async def campaign_page(request: Request) -> Response:
    ref = str(request.path_params["slug"])
    cache = _anonymous_page_cache(request)
    key = ("campaign", ref, str(getattr(request.state, "locale", "")))
    began: int | None = None
    if cache is not None:
        kept = await cache.fresh(key)
        if kept is not None:
            return Response(kept.body, media_type=kept.media_type)
        began = cache.begin()
    started = datetime.now(UTC)
    async with uow(request) as session:
        user = await viewer(request, session)
        detail = await service.campaign_detail(session, ref, user)
        if ref != detail.campaign.slug:  # reached by id: one address per campaign
            return RedirectResponse(f"/campaigns/{detail.campaign.slug}", status_code=301)
        space = await session.get_one(Space, detail.campaign.space_id)
        maker = await session.get_one(User, detail.campaign.maker_id)
        posted, _next = await updates.list_updates(session, detail.campaign.id, user, limit=UPDATES_SHOWN, cursor=None)
        # Records are added only to drafts, which no anonymous visitor sees: a kept page never misses one.
        first_record = await design_log.first_campaign_record(session, detail.campaign.id)
        maker_record = await maker_delivery_record(session, maker.id)
        space_record = await space_delivery_record(session, space.id)
        preorder = await preorder_section(session, detail.campaign, can_buy="maker" not in detail.roles)
        match = await campaign_match(session, detail.campaign)
    view = campaign_view(detail, space, maker, day_seconds=settings_of(request).day_seconds)
    # Shown once it counts: its card saved.
    view["match"] = None
    if match is not None and match.status in COUNTED_PLEDGE_STATUSES:
        view["match"] = {"sponsor_name": match.sponsor_name, "cap": match.cap, "matched": match.matched}
    view["delivery_record"] = {
        "maker_url": f"/makers/{maker.id}",
        "maker": record_parts(maker_record),
        "space": record_parts(space_record),
    }
    view["design_record"] = (
        {"recorded_at": first_record.recorded_at, "url": f"/api/v1/design-records/{first_record.id}"}
        if first_record is not None
        else None
    )
    view["preorder"] = preorder
    view["updates"] = _updates_view(posted)
    view["share"] = share_preview(
        view, base_url=settings_of(request).base_url, locale=str(getattr(request.state, "locale", "en"))
    )
    response = render(request, "campaigns/detail.html", {"campaign": view})
    if cache is not None and response.status_code == 200:
        day_seconds = settings_of(request).day_seconds
        # The page expires when days left would change, or a record by the turn of the month.
        expiries = [clock_changes_page_at(detail.campaign, day_seconds, started)]
        for record in (maker_record, space_record):
            turn = clock_changes_record_at(record, started)
            expiries.append(turn.timestamp() if turn else None)
        page = CachedPage(
            bytes(response.body),
            response.media_type or "text/html",
            min((moment for moment in expiries if moment is not None), default=None),
        )
        cache.keep(began, str(detail.campaign.id), key, page)
    return response


routes = [
    Route("/campaigns", discover, methods=["GET"]),
    Route("/campaigns/{slug}", campaign_page, methods=["GET"]),
]
