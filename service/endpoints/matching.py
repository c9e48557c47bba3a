"""Matching: a space's pledge to match a campaign's backers 1:1 up to a cap (campaigns.matching)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StrictInt
from starlette.requests import Request
from starlette.responses import Response

from campaigns.access import visible_campaign
from campaigns.errors import NotFound
from campaigns.matching import CAP_LIMIT, SPONSOR_NAME_LIMIT, MatchView, campaign_match, withdraw_match
from campaigns.models import Campaign, Pledge, User
from campaigns.pledges.checkout import start_match
from campaigns.pledges.schemas import PledgeOut
from campaigns.schemas_base import RequestModel, ResponseModel, UtcDatetime
from service.api import json_response
from service.endpoints.pledges import checkout_of, own_pledge_out
from service.routes import api
from service.web import client_address, current_user, optional_user, uow

TAGS = ["matching"]


class MatchIn(RequestModel):
    # The most the match gives, in the campaign's minor units; it gives what the backers give, up to this.
    cap: StrictInt = Field(gt=0, le=CAP_LIMIT)
    # Shown on the campaign page: the space itself, or a sponsor it names.
    sponsor_name: Annotated[str, Field(min_length=1, max_length=SPONSOR_NAME_LIMIT)]


class MatchOut(ResponseModel):
    pledge_id: uuid.UUID
    campaign_id: uuid.UUID
    space_id: uuid.UUID
    sponsor_name: str
    cap: int
    currency: str
    # What it is worth now: LEAST(cap, the backers' pledges) while live, its fixed amount after the close.
    matched: int
    status: str
    created_at: UtcDatetime
    # The match's own pledge (with its card set-up), to the operator who owns it; null for anyone else.
    pledge: PledgeOut | None = None


def match_out(match: MatchView, pledge: PledgeOut | None = None) -> MatchOut:
    return MatchOut(
        pledge_id=match.pledge_id,
        campaign_id=match.campaign_id,
        space_id=match.space_id,
        sponsor_name=match.sponsor_name,
        cap=match.cap,
        currency=match.currency,
        matched=match.matched,
        status=match.status,
        created_at=match.created_at,
        pledge=pledge,
    )


async def _own_pledge(request: Request, match: MatchView, user: User | None) -> PledgeOut | None:
    if user is None or user.id != match.owner_id:
        return None
    async with uow(request) as session:
        pledge = await session.get_one(Pledge, match.pledge_id)
    return await own_pledge_out(request, pledge, user)


@api.route(
    "POST",
    "/campaigns/{campaign_id}/match",
    summary="Match the campaign's backers 1:1 up to a cap (an operator of the sponsoring space, on a live campaign): "
    "returns the match with its pledge's card set-up; save the card and confirm the pledge as any backer does. It "
    "counts toward the goal for what it is worth, and is charged only if the campaign succeeds",
    body=MatchIn,
    response=MatchOut,
    status=201,
    idempotent=True,
    errors=(403, 409, 502, 503),
    tags=TAGS,
)
async def create_match(request: Request, body: MatchIn) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
    pledge = await start_match(
        checkout_of(request),
        user,
        request.path_params["campaign_id"],
        cap=body.cap,
        sponsor_name=body.sponsor_name,
        client_address=client_address(request),
    )
    async with uow(request) as session:
        campaign = await session.get_one(Campaign, pledge.campaign_id)
        match = await campaign_match(session, campaign)
    if match is None:
        raise NotFound("The match was withdrawn meanwhile.")
    return json_response(match_out(match, await own_pledge_out(request, pledge, user)), 201)


@api.route(
    "GET",
    "/campaigns/{campaign_id}/match",
    summary="The campaign's match (anyone who may see the campaign): the sponsor, the cap and what it is worth now",
    response=MatchOut,
    auth=False,
    tags=TAGS,
)
async def get_match(request: Request) -> Response:
    async with uow(request) as session:
        user = await optional_user(request, session)
        campaign, _roles = await visible_campaign(session, request.path_params["campaign_id"], user)
        match = await campaign_match(session, campaign)
    if match is None:
        raise NotFound("This campaign has no match.")
    return json_response(match_out(match, await _own_pledge(request, match, user)))


@api.route(
    "DELETE",
    "/campaigns/{campaign_id}/match",
    summary="Withdraw the campaign's match while it is live (an operator of the sponsoring space)",
    response=MatchOut,
    errors=(403, 409),
    tags=TAGS,
)
async def delete_match(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        match = await withdraw_match(
            session, request.path_params["campaign_id"], user, client_address=client_address(request)
        )
    return json_response(match_out(match))
