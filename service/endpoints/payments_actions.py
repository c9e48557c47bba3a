"""Actions on money outside the pledge flow: suspending a campaign (its escrow refunded), refunding one pledge, and a
new card for a pledge whose charge failed."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from campaigns import service
from campaigns.campaign_schemas import CampaignOut, Language
from campaigns.pledges.checkout import ask_for_new_card
from campaigns.pledges.schemas import PledgeOut
from campaigns.schemas_base import RequestModel, ResponseModel, UtcDatetime
from payments.pledge_refunds import REASON_LIMIT, refund_pledge
from payments.refunds import suspend_campaign
from service.api import json_response
from service.endpoints.campaigns import campaign_out
from service.endpoints.pledges import checkout_of, own_pledge_out
from service.routes import api
from service.web import client_address, current_user, uow


class SuspensionIn(RequestModel):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    # The reason's language; left out, the operator's account language.
    language: Language | None = None


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
            language=body.language,
        )
        detail = await service.campaign_detail(session, campaign.id, user)
    return json_response(campaign_out(detail))


class PledgeRefundIn(RequestModel):
    # None: all that is left of the pledge.
    amount: int | None = Field(default=None, gt=0)
    reason: Annotated[str, Field(min_length=1, max_length=REASON_LIMIT)]


class RefundOut(ResponseModel):
    id: uuid.UUID
    pledge_id: uuid.UUID
    campaign_id: uuid.UUID
    amount: int
    currency: str
    # pending until Stripe has refunded it (succeeded) or refused (failed)
    status: str
    reason: str | None
    requested_by: uuid.UUID | None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None


@api.route(
    "POST",
    "/pledges/{pledge_id}/refunds",
    summary="Refund one pledge, whole (no amount: all that is left) or in part, with a reason (an operator of the "
    "sponsoring space, or an admin); the refund is made at Stripe and booked from escrow after the answer, and the "
    "backer is mailed",
    body=PledgeRefundIn,
    response=RefundOut,
    status=201,
    errors=(403, 409),
    idempotent=True,
    tags=["money"],
)
async def refund_one_pledge(request: Request, body: PledgeRefundIn) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        refund = await refund_pledge(
            session,
            request.path_params["pledge_id"],
            user,
            amount=body.amount,
            reason=body.reason,
            client_address=client_address(request),
        )
        out = RefundOut.model_validate(refund)
    return json_response(out, 201)


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
    return json_response(await own_pledge_out(request, pledge, backer))
