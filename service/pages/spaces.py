"""The makerspaces that sponsor and vet campaigns: all of them, and one with its live campaigns."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campaigns import service, spaces
from campaigns.models import Campaign, Space
from fulfillment.delivery_record import CampaignDelivery, space_campaign_deliveries, space_delivery_record
from payments.risk_fund import FundStatement, fund_statement
from service.pages import country_name, fee_percent, viewer
from service.pages.campaigns import status_label
from service.pages.delivery_words import outcome_words, record_parts
from service.pages.home import live_campaign_cards
from service.web import render, settings_of, uow

SPACES_PER_PAGE = 48
# The campaigns a space's page lists with their state, newest first.
SPONSORED_SHOWN = 100


def _space_view(space: Space) -> dict[str, Any]:
    return {
        "name": space.name,
        "url": f"/spaces/{space.slug}",
        "city": f"{space.city}, {space.province}" if space.province else space.city,
        "country": country_name(space.country),
        "fee": fee_percent(space.sponsor_fee_bps),
        "description": space.description,
    }


async def all_spaces(request: Request) -> Response:
    async with uow(request) as session:
        await viewer(request, session)
        rows, next_cursor = await spaces.list_spaces(
            session, limit=SPACES_PER_PAGE, cursor=request.query_params.get("cursor")
        )
    return render(request, "spaces/list.html", {"spaces": [_space_view(s) for s in rows], "next_cursor": next_cursor})


async def one_space(request: Request) -> Response:
    async with uow(request) as session:
        await viewer(request, session)
        space = await spaces.get_space_by_slug(session, request.path_params["slug"])
        cards = await live_campaign_cards(
            session, day_seconds=settings_of(request).day_seconds, space_id=space.id, limit=60
        )
        record = await space_delivery_record(session, space.id)
        sponsored, _next = await service.list_campaigns(session, None, space_id=space.id, limit=SPONSORED_SHOWN)
        deliveries = await space_campaign_deliveries(session, space.id)
        fund = await fund_statement(session, space)
    context = {
        "space": _space_view(space),
        "cards": cards,
        "record": record_parts(record),
        "fund": _fund_view(fund),
        "sponsored": [_sponsored_view(detail.campaign, deliveries.get(detail.campaign.id)) for detail in sponsored],
    }
    return render(request, "spaces/detail.html", context)


def _fund_view(fund: FundStatement) -> dict[str, Any]:
    return {
        "currency": fund.currency,
        "share_bps": fund.share_bps,
        "share": fee_percent(fund.share_bps),
        "cap": fund.cap,
        "contributed": fund.contributed,
        "paid_out": fund.paid_out,
        "balance": fund.balance,
        "campaigns": [
            {
                "title": c.title,
                "url": f"/campaigns/{c.slug}",
                "contributed": c.contributed,
                "paid_out": c.paid_out,
                "paid_out_at": c.paid_out_at,
            }
            for c in fund.campaigns
        ],
    }


def _sponsored_view(campaign: Campaign, delivery: CampaignDelivery | None) -> dict[str, Any]:
    return {
        "title": campaign.title,
        "url": f"/campaigns/{campaign.slug}",
        "status": campaign.status,
        "status_label": status_label(campaign.status),
        "delivery": outcome_words(delivery) if delivery else None,
    }


routes = [
    Route("/spaces", all_spaces, methods=["GET"]),
    Route("/spaces/{slug}", one_space, methods=["GET"]),
]
