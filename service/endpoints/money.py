"""Escrow in the open: the campaign's books, its milestones, releases and payouts."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, RootModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from campaigns.models import Campaign
from campaigns.schemas_base import RequestModel, ResponseModel, UtcDatetime
from campaigns.spaces import get_space
from payments import ledger, milestones
from payments.milestones import MilestoneFigures, PlannedMilestone
from service.api import json_response
from service.routes import api
from service.web import client_address, current_user, uow


class LedgerOut(ResponseModel):
    currency: str
    pledged: int
    collected: int
    refunded: int
    platform_fee: int
    sponsor_fee: int
    processor_fee: int
    released: int
    escrow_held: int
    # Disputes (chargebacks): held by the backers' banks while open, and lost. With them the books read
    # collected - refunded - platform_fee - sponsor_fee - processor_fee - released - disputed - dispute_lost
    # == escrow_held.
    disputed: int
    dispute_lost: int
    # The space's risk-compensation fund (payments.risk_fund): the part of sponsor_fee paid into it, and what it added
    # to this campaign's refunds when it was suspended; with the latter the books read
    # collected + fund_topped_up - refunded - platform_fee - sponsor_fee - processor_fee - released - disputed
    # - dispute_lost == escrow_held.
    fund_contributed: int
    fund_topped_up: int
    # Of `collected`, what a sponsor's match paid (its own account, `match_clearing`; campaigns.matching).
    matched: int


class PayoutOut(ResponseModel):
    id: uuid.UUID
    milestone_id: uuid.UUID
    amount: int
    currency: str
    status: str
    bank_reference: str | None
    created_at: UtcDatetime
    paid_at: UtcDatetime | None


class MilestoneOut(ResponseModel):
    id: uuid.UUID
    position: int
    name: str
    share_bps: int
    unlocks_on: str
    status: str
    # Fixed once released; before that, what the release rule would give now.
    amount: int
    currency: str
    requestable: bool
    requested_at: UtcDatetime | None
    released_at: UtcDatetime | None
    payout: PayoutOut | None


class MilestoneList(RootModel[list[MilestoneOut]]):
    pass


class PublicMilestoneOut(ResponseModel):
    id: uuid.UUID
    name: str
    share_bps: int
    status: str
    amount: int
    released_at: UtcDatetime | None


class PublicLedgerOut(ResponseModel):
    currency: str
    collected: int
    fees: int
    released: int
    escrow_held: int
    refunded: int
    disputed: int
    dispute_lost: int
    milestones: list[PublicMilestoneOut]


class PayoutMark(RequestModel):
    bank_reference: str = Field(min_length=1, max_length=200)


class PlannedMilestoneIn(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    share_bps: int = Field(ge=1, le=10000)
    unlocks_on: Literal["funded", "first_batch_confirmed", "shipping_done"]


class MilestonePlanIn(RequestModel):
    """The space's own plan; `null` goes back to Kindling's default (50 % funded, 30 % first batch, 20 % shipped)."""

    milestones: Annotated[list[PlannedMilestoneIn], Field(min_length=1, max_length=milestones.MAX_MILESTONES)] | None


class PlannedMilestoneOut(ResponseModel):
    name: str
    share_bps: int
    unlocks_on: str


class MilestonePlanOut(ResponseModel):
    space_id: uuid.UUID
    custom: bool
    milestones: list[PlannedMilestoneOut]


def _milestone_out(figures: MilestoneFigures, currency: str) -> MilestoneOut:
    m = figures.milestone
    return MilestoneOut(
        id=m.id,
        position=m.position,
        name=m.name,
        share_bps=m.share_bps,
        unlocks_on=m.unlocks_on,
        status=m.status,
        amount=figures.amount,
        currency=currency,
        requestable=figures.due,
        requested_at=m.requested_at,
        released_at=m.released_at,
        payout=PayoutOut.model_validate(figures.payout) if figures.payout else None,
    )


@api.route(
    "GET",
    "/campaigns/{campaign_id}/ledger",
    summary="The campaign's books: collected, fees, refunds, releases, disputes and what escrow holds "
    "(collected - refunded - platform_fee - sponsor_fee - processor_fee - released - disputed - dispute_lost "
    "== escrow_held)",
    response=LedgerOut,
    errors=(403,),
    tags=["money"],
)
async def get_ledger(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        campaign, _ = await ledger.books_for(session, request.path_params["campaign_id"], user)
        summary = await ledger.campaign_ledger(session, campaign.id)
    return json_response(LedgerOut.model_validate(summary))


@api.route(
    "GET",
    "/campaigns/{campaign_id}/ledger/public",
    summary="The public escrow statement of a successful campaign, without backer data",
    response=PublicLedgerOut,
    auth=False,
    errors=(409,),
    tags=["money"],
)
async def get_public_ledger(request: Request) -> Response:
    async with uow(request) as session:
        campaign = await ledger.public_books_for(session, request.path_params["campaign_id"])
        summary = await ledger.campaign_ledger(session, campaign.id)
        figures = await milestones.milestone_figures(session, campaign, summary.escrow_held)
    return json_response(
        PublicLedgerOut(
            currency=summary.currency,
            collected=summary.collected,
            fees=summary.fees,
            released=summary.released,
            escrow_held=summary.escrow_held,
            refunded=summary.refunded,
            disputed=summary.disputed,
            dispute_lost=summary.dispute_lost,
            milestones=[
                PublicMilestoneOut(
                    id=f.milestone.id,
                    name=f.milestone.name,
                    share_bps=f.milestone.share_bps,
                    status=f.milestone.status,
                    amount=f.amount,
                    released_at=f.milestone.released_at,
                )
                for f in figures
            ],
        )
    )


@api.route(
    "GET",
    "/campaigns/{campaign_id}/milestones",
    summary="The campaign's escrow milestones with their amounts",
    response=MilestoneList,
    errors=(403,),
    tags=["money"],
)
async def list_milestones(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        campaign, _ = await ledger.books_for(session, request.path_params["campaign_id"], user)
        summary = await ledger.campaign_ledger(session, campaign.id)
        figures = await milestones.milestone_figures(session, campaign, summary.escrow_held)
    return json_response(MilestoneList([_milestone_out(f, campaign.currency) for f in figures]))


async def _figures_out(session: AsyncSession, campaign_id: uuid.UUID, milestone_id: uuid.UUID) -> MilestoneOut:
    campaign = await session.get_one(Campaign, campaign_id)
    summary = await ledger.campaign_ledger(session, campaign.id)
    figures = await milestones.milestone_figures(session, campaign, summary.escrow_held)
    return next(_milestone_out(f, campaign.currency) for f in figures if f.milestone.id == milestone_id)


@api.route(
    "POST",
    "/campaigns/{campaign_id}/milestones/{milestone_id}/request",
    summary="Ask the sponsoring space to release a milestone (maker)",
    response=MilestoneOut,
    errors=(403, 409),
    idempotent=True,
    tags=["money"],
)
async def request_milestone(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        milestone = await milestones.request_milestone(
            session, request.path_params["campaign_id"], request.path_params["milestone_id"], user
        )
        out = await _figures_out(session, milestone.campaign_id, milestone.id)
    return json_response(out)


@api.route(
    "POST",
    "/campaigns/{campaign_id}/milestones/{milestone_id}/release",
    summary="Release a requested milestone from escrow to the maker (operator of the space, never the maker)",
    response=MilestoneOut,
    errors=(403, 409),
    idempotent=True,
    tags=["money"],
)
async def release_milestone(request: Request) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        milestone = await milestones.release_milestone(
            session,
            request.path_params["campaign_id"],
            request.path_params["milestone_id"],
            user,
            client_address=client_address(request),
        )
        out = await _figures_out(session, milestone.campaign_id, milestone.id)
    return json_response(out)


@api.route(
    "POST",
    "/campaigns/{campaign_id}/milestones/{milestone_id}/payout",
    summary="Mark a released milestone's payout paid, with the bank transfer's reference (operator or admin)",
    body=PayoutMark,
    response=PayoutOut,
    errors=(403, 409),
    idempotent=True,
    tags=["money"],
)
async def mark_payout_paid(request: Request, body: PayoutMark) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        payout = await milestones.mark_payout_paid(
            session,
            request.path_params["campaign_id"],
            request.path_params["milestone_id"],
            user,
            body.bank_reference,
            client_address=client_address(request),
        )
    return json_response(PayoutOut.model_validate(payout))


@api.route(
    "GET",
    "/spaces/{space_id}/milestone-plan",
    summary="How the space releases escrow to its makers",
    response=MilestonePlanOut,
    auth=False,
    tags=["money"],
)
async def get_milestone_plan(request: Request) -> Response:
    async with uow(request) as session:
        space = await get_space(session, request.path_params["space_id"])
    return json_response(_plan_out(space.id, space.milestone_plan is not None, milestones.milestone_plan_of(space)))


@api.route(
    "PUT",
    "/spaces/{space_id}/milestone-plan",
    summary="Set the space's own escrow release plan (operator of the space or admin)",
    body=MilestonePlanIn,
    response=MilestonePlanOut,
    errors=(403,),
    tags=["money"],
)
async def set_milestone_plan(request: Request, body: MilestonePlanIn) -> Response:
    async with uow(request) as session:
        user = await current_user(request, session)
        plan = None
        if body.milestones is not None:
            plan = [PlannedMilestone(m.name, m.share_bps, m.unlocks_on) for m in body.milestones]
        space, saved = await milestones.change_milestone_plan(
            session, request.path_params["space_id"], user, plan, client_address=client_address(request)
        )
    return json_response(_plan_out(space.id, plan is not None, saved))


def _plan_out(space_id: uuid.UUID, custom: bool, plan: tuple[PlannedMilestone, ...]) -> MilestonePlanOut:
    return MilestonePlanOut(
        space_id=space_id,
        custom=custom,
        milestones=[PlannedMilestoneOut(name=p.name, share_bps=p.share_bps, unlocks_on=p.unlocks_on) for p in plan],
    )
