from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from campaigns import pledges
from campaigns.access import visible_campaign
from campaigns.errors import NotAllowed, NotFound
from campaigns.models import Pledge
from campaigns.pagination import Cursor, page_after
from campaigns.pledge_schemas import PledgeChange, PledgeCreate, PledgeOut
from campaigns.pledges import HoldLimit
from campaigns.schemas import PageQuery
from campaigns.schemas_base import Page
from fulfillment.shipments import shipment_of
from service.api import json_response
from service.checkout import Checkout, confirm_pledge, start_pledge
from service.routes import api
from service.web import client_address, current_user, gateway_of, sender_of, sessions_of, settings_of, uow

ADDRESS_VISIBLE_STATUSES = ("funded", "fulfilling", "fulfilled")


def checkout_of(request: Request) -> Checkout:
    return Checkout(sessions_of(request), sender_of(request), gateway_of(request))


def hold_limit_of(request: Request) -> HoldLimit:
    return HoldLimit(client_address(request), settings_of(request).max_open_holds)


def pledge_out(request: Request, pledge: Pledge) -> PledgeOut:
    return PledgeOut.of(pledge, publishable_key=gateway_of(request).publishable_key)


@api.route(
    "POST",
    "/campaigns/{campaign_id}/pledges",
    summary="Pledge to a live campaign; returns the card set-up",
    body=PledgeCreate,
    response=PledgeOut,
    status=201,
    idempotent=True,
    errors=(403, 409, 502, 503),
    tags=["pledges"],
)
async def create_pledge(request: Request, body: PledgeCreate) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
    pledge = await start_pledge(
        checkout_of(request),
        backer,
        campaign_id=request.path_params["campaign_id"],
        tier_id=body.tier_id,
        bonus=body.bonus,
        shipping_country=body.shipping_country,
        hold_limit=hold_limit_of(request),
    )
    return json_response(pledge_out(request, pledge), 201)


@api.route(
    "POST",
    "/pledges/{pledge_id}/confirm",
    summary="Activate the pledge once Stripe has saved its card",
    response=PledgeOut,
    errors=(403, 409, 502, 503),
    tags=["pledges"],
)
async def confirm(request: Request) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
    pledge = await confirm_pledge(checkout_of(request), backer, request.path_params["pledge_id"])
    return json_response(pledge_out(request, pledge))


@api.route(
    "PATCH",
    "/pledges/{pledge_id}",
    summary="Change the tier, bonus or shipping country while the campaign is live",
    body=PledgeChange,
    response=PledgeOut,
    errors=(403, 409),
    tags=["pledges"],
)
async def change_pledge(request: Request, body: PledgeChange) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
        pledge = await pledges.get_pledge(session, request.path_params["pledge_id"])
        pledge = await pledges.change_pledge(
            session,
            pledge,
            backer,
            tier_id=body.tier_id,
            bonus=body.bonus,
            shipping_country=body.shipping_country,
        )
    return json_response(pledge_out(request, pledge))


@api.route(
    "DELETE",
    "/pledges/{pledge_id}",
    summary="Cancel the pledge while the campaign is live",
    response=PledgeOut,
    errors=(403, 409),
    tags=["pledges"],
)
async def cancel_pledge(request: Request) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
        pledge = await pledges.get_pledge(session, request.path_params["pledge_id"])
        pledge = await pledges.cancel_pledge(session, pledge, backer)
    return json_response(pledge_out(request, pledge))


@api.route(
    "GET",
    "/pledges/{pledge_id}",
    summary="One pledge (its backer, the campaign's maker and operators)",
    response=PledgeOut,
    tags=["pledges"],
)
async def get_pledge(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        pledge = await pledges.get_pledge(session, request.path_params["pledge_id"])
        if pledge.backer_id != user.id:
            _campaign, roles = await visible_campaign(session, pledge.campaign_id, user)
            if not roles & {"maker", "operator", "admin"}:
                raise NotFound("No such pledge.")
        shipment = await shipment_of(session, pledge.id)
    return json_response(PledgeOut.of(pledge, publishable_key=gateway_of(request).publishable_key, shipment=shipment))


@api.route(
    "GET",
    "/me/pledges",
    summary="The signed-in user's pledges, newest first",
    query=PageQuery,
    response=Page[PledgeOut],
    tags=["pledges"],
)
async def my_pledges(request: Request, query: PageQuery) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        rows, next_cursor = await page_after(
            session,
            select(Pledge).where(Pledge.backer_id == user.id),
            Pledge,
            limit=query.limit,
            cursor=Cursor.decode(query.cursor),
            newest_first=True,
        )
    return json_response(Page[PledgeOut](items=[pledge_out(request, p) for p in rows], next_cursor=next_cursor))


@api.route(
    "GET",
    "/campaigns/{campaign_id}/pledges",
    summary="A campaign's pledges (maker, operators, admin)",
    query=PageQuery,
    response=Page[PledgeOut],
    errors=(403,),
    tags=["pledges"],
)
async def campaign_pledges(request: Request, query: PageQuery) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        campaign, roles = await visible_campaign(session, request.path_params["campaign_id"], user)
        if not roles & {"maker", "operator", "admin"}:
            raise NotAllowed("Only the maker, the space's operators and admins see a campaign's pledges.")
        rows, next_cursor = await page_after(
            session,
            select(Pledge).where(Pledge.campaign_id == campaign.id),
            Pledge,
            limit=query.limit,
            cursor=Cursor.decode(query.cursor),
        )
    # Addresses are the maker's to ship to, and only once there is something to ship.
    show_addresses = "maker" in roles and campaign.status in ADDRESS_VISIBLE_STATUSES
    items = []
    for pledge in rows:
        out = pledge_out(request, pledge)
        items.append(out if show_addresses else out.model_copy(update={"address": None}))
    return json_response(Page[PledgeOut](items=items, next_cursor=next_cursor))
