"""Late pledges' API: which tiers and add-ons a campaign keeps selling after its deadline."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from campaigns import late_pledges
from campaigns.late_pledges import LatePledgesIn, LatePledgesOut
from fulfillment.queue import next_open_batch_month
from service.api import json_response
from service.routes import api
from service.web import current_user, optional_user, uow

TAGS = ["late pledges"]


@api.route(
    "GET",
    "/campaigns/{campaign_id}/late-pledges",
    summary="The tiers and add-ons the campaign sells after its deadline, at their late price, and whether each is "
    "open now",
    response=LatePledgesOut,
    auth=False,
    tags=TAGS,
)
async def get_late_pledges(request: Request) -> Response:
    async with uow(request) as session:
        viewer = await optional_user(request, session)
        campaign, catalogue = await late_pledges.late_pledges_of(session, request.path_params["campaign_id"], viewer)
        month = await next_open_batch_month(session, campaign.id)
    return json_response(LatePledgesOut.of(campaign, catalogue, estimated_ship_month=month))


@api.route(
    "PUT",
    "/campaigns/{campaign_id}/late-pledges",
    summary="Choose the tiers and add-ons sold after the deadline, each at the same or a new price and optionally "
    "limited (maker, while a draft, so that the space's review covers them)",
    body=LatePledgesIn,
    response=LatePledgesOut,
    errors=(403, 409, 422),
    tags=TAGS,
)
async def put_late_pledges(request: Request, body: LatePledgesIn) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        campaign, catalogue = await late_pledges.set_late_pledges(
            session,
            request.path_params["campaign_id"],
            maker,
            [tier.choice() for tier in body.tiers],
            [add_on.choice() for add_on in body.add_ons],
        )
    return json_response(LatePledgesOut.of(campaign, catalogue))


@api.route(
    "POST",
    "/campaigns/{campaign_id}/late-pledges/{tier_id}/end",
    summary="Stop selling one late reward, for good (maker)",
    response=LatePledgesOut,
    errors=(403,),
    idempotent=True,
    tags=TAGS,
)
async def end_late_reward(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        campaign, catalogue = await late_pledges.end_late_reward(
            session, request.path_params["campaign_id"], request.path_params["tier_id"], maker
        )
        month = await next_open_batch_month(session, campaign.id)
    return json_response(LatePledgesOut.of(campaign, catalogue, estimated_ship_month=month))


@api.route(
    "POST",
    "/campaigns/{campaign_id}/late-pledges/add-ons/{add_on_id}/end",
    summary="Stop selling one late add-on, for good (maker)",
    response=LatePledgesOut,
    errors=(403,),
    idempotent=True,
    tags=TAGS,
)
async def end_late_add_on(request: Request) -> Response:
    async with uow(request) as session:
        maker = await current_user(request, session)
        campaign, catalogue = await late_pledges.end_late_add_on(
            session, request.path_params["campaign_id"], request.path_params["add_on_id"], maker
        )
        month = await next_open_batch_month(session, campaign.id)
    return json_response(LatePledgesOut.of(campaign, catalogue, estimated_ship_month=month))
