"""What the worker runs for fulfillment. The Dramatiq actor "fulfillment.plan" is declared in service/tasks.py, which
owns the worker's database sessions, and calls `plan_campaign_job`. The sweep's steps (service/fulfillment_sweep.py)
are `replan_stale_campaigns` here, `fulfillment.addresses.remind_missing_addresses` and
`fulfillment.shipments.finish_fulfilled_campaigns`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy import exists, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.ids import parse_id
from campaigns.models import Campaign, Pledge
from campaigns.pledges.contents import contains_goods
from campaigns.pledges.lifecycle import SHIPPABLE_PLEDGE_STATUSES
from fulfillment.addresses import send_address_surveys
from fulfillment.models import AddressRequest, Allocation, Batch, PlanRequest
from fulfillment.planner import PledgeLargerThanBatch
from fulfillment.service import PLANNING_STATUSES, has_address, plan_campaign, request_plan

log = logging.getLogger("kindling.fulfillment")

# A unit of work: one transaction that commits when the block ends cleanly, then sends the jobs it asked for.
Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def plan_campaign_job(transaction: Transaction, campaign_id: str, *, survey_seconds: int) -> None:
    """The "fulfillment.plan" job: plan the campaign and ask every backer not yet asked for their address.

    Idempotent and driven by the database: run twice, the second run keeps every batch and mails nobody.
    """
    ident = parse_id(campaign_id)
    if ident is None:
        log.warning("fulfillment.plan: %r is not a campaign id", campaign_id)
        return
    try:
        async with transaction() as session:
            outcome = await plan_campaign(session, ident)
            surveyed = await send_address_surveys(session, ident, survey_seconds=survey_seconds)
    except PledgeLargerThanBatch as error:
        # Planning again cannot help until the maker's products change; the backers are asked for addresses anyway.
        log.error("campaign %s cannot be planned: %s", ident, error.detail)
        async with transaction() as session:
            await send_address_surveys(session, ident, survey_seconds=survey_seconds)
        return
    if outcome is not None:
        log.info(
            "campaign %s planned: %d batch(es) written, %d kept, %d late package(s) listed, %d survey(s) sent",
            ident,
            outcome.written,
            outcome.kept,
            outcome.listed_late,
            surveyed,
        )


async def replan_stale_campaigns(session: AsyncSession) -> int:
    """The sweep's step: ask for a plan of every funded or fulfilling campaign whose plan no longer matches its
    pledges. Found from the data alone, so a lost job or a change made by any code (a late charge, a refund) is
    caught: a paid pledge with a reward that is in no batch or was never asked for its address, a pledge no longer
    paid in an unconfirmed batch, an addressed package on no shipping list, or contents changed since the plan
    (`plan_requests`)."""
    paid_reward = select(Pledge.id).where(
        Pledge.campaign_id == Campaign.id, Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES), contains_goods()
    )
    unallocated = paid_reward.where(
        or_(
            not_(exists().where(Allocation.pledge_id == Pledge.id)),
            not_(exists().where(AddressRequest.pledge_id == Pledge.id)),
        )
    )
    unpaid_in_open_batch = (
        select(Allocation.pledge_id)
        .join(Batch, Batch.id == Allocation.batch_id)
        .join(Pledge, Pledge.id == Allocation.pledge_id)
        .where(
            Allocation.campaign_id == Campaign.id,
            Batch.status == "planned",
            Pledge.status.not_in(SHIPPABLE_PLEDGE_STATUSES),
        )
    )
    unlisted = (
        select(Allocation.pledge_id)
        .join(Pledge, Pledge.id == Allocation.pledge_id)
        .where(
            Allocation.campaign_id == Campaign.id,
            Allocation.list_batch_id.is_(None),
            Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES),
            has_address(),
        )
    )
    asked_for = select(PlanRequest.campaign_id).where(PlanRequest.campaign_id == Campaign.id)
    stale = await session.scalars(
        select(Campaign.id).where(
            Campaign.status.in_(PLANNING_STATUSES),
            or_(exists(unallocated), exists(unpaid_in_open_batch), exists(unlisted), exists(asked_for)),
        )
    )
    found = 0
    for campaign_id in stale:
        request_plan(session, campaign_id)
        found += 1
    return found
