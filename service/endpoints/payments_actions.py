"""Actions on money outside the pledge flow: suspending a campaign (its escrow refunded), and a new card for a
pledge whose charge failed."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from campaigns import service
from campaigns.campaign_schemas import CampaignOut
from campaigns.pledge_schemas import PledgeOut
from campaigns.schemas_base import RequestModel
from payments.refunds import suspend_campaign
from service.api import json_response
from service.checkout import ask_for_new_card
from service.endpoints.campaigns import campaign_out
from service.endpoints.pledges import checkout_of, pledge_out
from service.routes import api
from service.web import client_address, current_user, uow


class SuspensionIn(RequestModel):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


@api.route(
    "POST",
    "/campaigns/{campaign_id}/suspend",
    summary="Suspend the campaign (an operator of its space, or an admin): charging stops, pending milestones are "
    "cancelled and what escrow still holds is refunded to the backers pro rata",
    body=SuspensionIn,
    response=CampaignOut,
    errors=(403, 409),
    idempotent=True,
    tags=["money"],
)
async def suspend(request: Request, body: SuspensionIn) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        campaign, _due = await suspend_campaign(
            session,
            request.path_params["campaign_id"],
            user,
            reason=body.reason,
            client_address=client_address(request),
        )
        detail = await service.campaign_detail(session, campaign.id, user)
    return json_response(campaign_out(detail))


@api.route(
    "POST",
    "/pledges/{pledge_id}/payment-method",
    summary="A new card set-up for a pledge whose charge failed (its backer); confirm the pledge once it is saved, "
    "and the charge is retried at once. For a pledge still waiting for its first card, its card set-up (made anew "
    "if the request that made the pledge died before Stripe answered)",
    response=PledgeOut,
    errors=(403, 409, 502, 503),
    idempotent=True,
    tags=["pledges"],
)
async def new_payment_method(request: Request) -> Response:
    async with uow(request) as session:
        backer = await current_user(request, session)
    pledge = await ask_for_new_card(checkout_of(request), backer, request.path_params["pledge_id"])
    return json_response(pledge_out(request, pledge))
