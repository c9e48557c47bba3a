from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from campaigns import regions, spaces
from campaigns.schemas import Name, OperatorAdd, OperatorOut, PageQuery, SpaceCreate, SpaceOut
from campaigns.schemas_base import Page, RequestModel, ResponseModel, UtcDatetime
from fulfillment.delivery_record import space_delivery_record
from fulfillment.schemas import DeliveryRecordOut, SpaceWithRecordOut
from payments import risk_fund, space_terms
from payments.milestones import MAX_MILESTONES, PlannedMilestone
from service.api import json_response
from service.endpoints.money import PlannedMilestoneIn
from service.routes import api
from service.web import client_address, current_user, uow


class SpaceEdit(RequestModel):
    """What a space's operators change; a field left out stays. `milestones: null` goes back to Kindling's default
    plan. Campaigns launched already keep the fee and plan they launched with."""

    name: Name | None = None
    description: str | None = Field(default=None, max_length=space_terms.MAX_DESCRIPTION)
    sponsor_fee_bps: int | None = Field(default=None, ge=0, le=space_terms.MAX_SPONSOR_FEE_BPS)
    milestones: Annotated[list[PlannedMilestoneIn], Field(min_length=1, max_length=MAX_MILESTONES)] | None = None
    fund_share_bps: int | None = Field(default=None, ge=0, le=risk_fund.MAX_FUND_SHARE_BPS)
    fund_cap: int | None = Field(default=None, ge=0, le=risk_fund.MAX_FUND_CAP)
    fund_currency: str | None = Field(default=None, pattern="^[A-Z]{3}$")


def space_changes(body: SpaceEdit) -> dict[str, Any]:
    """The keyword arguments of payments.space_terms.edit_space for the fields the body gives."""
    given = body.model_fields_set
    changes: dict[str, Any] = {
        name: getattr(body, name)
        for name in ("name", "description", "sponsor_fee_bps", "fund_share_bps", "fund_cap", "fund_currency")
        if name in given and getattr(body, name) is not None
    }
    if "milestones" in given:
        plan = body.milestones
        changes["milestones"] = (
            None if plan is None else [PlannedMilestone(m.name, m.share_bps, m.unlocks_on) for m in plan]
        )
    return changes


@api.route(
    "POST",
    "/spaces",
    summary="Create a makerspace (admin)",
    body=SpaceCreate,
    response=SpaceOut,
    status=201,
    errors=(403, 409),
    idempotent=True,
    tags=["spaces"],
)
async def create_space(request: Request, body: SpaceCreate) -> Response:
    async with uow(request) as session:
        admin = await current_user(request, session)
        space = await spaces.create_space(session, admin, **body.model_dump(), client_address=client_address(request))
    return json_response(SpaceOut.model_validate(space), 201)


@api.route(
    "PATCH",
    "/spaces/{space_id}",
    summary="Edit a space's name, description, sponsor fee, milestone plan and risk-compensation fund "
    "(operator of the space or admin)",
    body=SpaceEdit,
    response=SpaceOut,
    errors=(403, 404),
    tags=["spaces"],
)
async def edit_space(request: Request, body: SpaceEdit) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        space = await space_terms.edit_space(
            session,
            user,
            request.path_params["space_id"],
            **space_changes(body),
            client_address=client_address(request),
        )
    return json_response(SpaceOut.model_validate(space))


@api.route(
    "POST",
    "/spaces/{space_id}/operators",
    summary="Name an existing user operator of a space (admin)",
    body=OperatorAdd,
    response=OperatorOut,
    status=201,
    errors=(403, 404, 409),
    idempotent=True,
    tags=["spaces"],
)
async def add_operator(request: Request, body: OperatorAdd) -> Response:
    async with uow(request) as session:
        admin = await current_user(request, session)
        space = await spaces.get_space(session, request.path_params["space_id"])
        user = await spaces.add_operator(session, admin, space, body.email, client_address=client_address(request))
    return json_response(OperatorOut(space_id=space.id, user_id=user.id, email=user.email), 201)


@api.route(
    "DELETE",
    "/spaces/{space_id}/operators/{user_id}",
    summary="The user no longer operates the space (admin)",
    status=204,
    errors=(403,),
    tags=["spaces"],
)
async def remove_operator(request: Request) -> Response:
    async with uow(request) as session:
        admin = await current_user(request, session)
        space = await spaces.get_space(session, request.path_params["space_id"])
        await spaces.remove_operator(
            session, admin, space, request.path_params["user_id"], client_address=client_address(request)
        )
    return Response(status_code=204)


@api.route(
    "GET", "/spaces", summary="All makerspaces", query=PageQuery, response=Page[SpaceOut], auth=False, tags=["spaces"]
)
async def list_spaces(request: Request, query: PageQuery) -> Response:
    async with uow(request) as session:
        rows, next_cursor = await spaces.list_spaces(session, limit=query.limit, cursor=query.cursor)
    return json_response(Page[SpaceOut](items=[SpaceOut.model_validate(s) for s in rows], next_cursor=next_cursor))


@api.route(
    "GET",
    "/spaces/{space_id}",
    summary="One makerspace, with the delivery record of the campaigns it sponsored",
    response=SpaceWithRecordOut,
    auth=False,
    errors=(404,),
    tags=["spaces"],
)
async def get_space(request: Request) -> Response:
    async with uow(request) as session:
        space = await spaces.get_space(session, request.path_params["space_id"])
        record = await space_delivery_record(session, space.id)
    return json_response(
        SpaceWithRecordOut.model_validate(
            {**SpaceOut.model_validate(space).model_dump(), "delivery_record": DeliveryRecordOut.model_validate(record)}
        )
    )


class FundCampaignOut(ResponseModel):
    campaign_id: uuid.UUID
    slug: str
    title: str
    contributed: int
    paid_out: int
    paid_out_at: UtcDatetime | None


class FundOut(ResponseModel):
    """A space's risk-compensation fund, read from the ledger: `balance == contributed - paid_out`."""

    currency: str
    share_bps: int
    cap: int
    contributed: int
    paid_out: int
    balance: int
    campaigns: list[FundCampaignOut]


def fund_out(statement: risk_fund.FundStatement) -> FundOut:
    return FundOut(
        currency=statement.currency,
        share_bps=statement.share_bps,
        cap=statement.cap,
        contributed=statement.contributed,
        paid_out=statement.paid_out,
        balance=statement.balance,
        campaigns=[FundCampaignOut.model_validate(c, from_attributes=True) for c in statement.campaigns],
    )


@api.route(
    "GET",
    "/spaces/{space_id}/fund",
    summary="A space's risk-compensation fund: its terms, balance, what each campaign paid in and what it paid out",
    response=FundOut,
    auth=False,
    errors=(404,),
    tags=["spaces"],
)
async def get_fund(request: Request) -> Response:
    async with uow(request) as session:
        space = await spaces.get_space(session, request.path_params["space_id"])
        statement = await risk_fund.fund_statement(session, space)
    return json_response(fund_out(statement))


class RegionOut(ResponseModel):
    country: str
    province: str
    city: str
    spaces: int
    live: int


class RegionList(ResponseModel):
    items: list[RegionOut]
    # The city with the most live campaigns; null when none is live anywhere.
    busiest: RegionOut | None


@api.route(
    "GET",
    "/regions",
    summary="Every city with a makerspace: its province and country, its spaces and live campaigns, busiest first",
    response=RegionList,
    auth=False,
    tags=["spaces"],
)
async def list_regions(request: Request) -> Response:
    async with uow(request) as session:
        found = await regions.live_by_region(session)
    busiest = regions.busiest_city(found)
    return json_response(
        RegionList(
            items=[RegionOut.model_validate(r) for r in found],
            busiest=RegionOut.model_validate(busiest) if busiest else None,
        )
    )
