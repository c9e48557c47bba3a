"""Batch dates: the maker's planned production and ship dates for each batch, every change kept with its reason, and
the one mail backers get when their batch's ship date slips by more than `SLIP_DAYS`.

Dates belong to a batch's number (fulfillment.models.BatchSchedule): planning may replace an unconfirmed batch's row,
never its place in line. Changes are serialised by the campaign's row lock, the same one planning takes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import Conflict, InvalidInput
from campaigns.lifecycle import NotFunded
from campaigns.models import Campaign, Pledge, User
from campaigns.pledges.lifecycle import SHIPPABLE_PLEDGE_STATUSES
from fulfillment.backer_mail import mail_about_pledge, mail_backers
from fulfillment.models import Allocation, Batch, BatchSchedule, BatchScheduleChange, Shipment
from fulfillment.service import PLANNING_STATUSES, batch_of, fulfillment_campaign, lock_campaign

SLIP_DAYS = 14
BATCH_DELAYED = "batch_delayed"
REASON_MAX = 2000


class BatchShipped(Conflict):
    type = "batch-shipped"
    title = "The batch has shipped"


@dataclass(frozen=True)
class DatesChanged:
    """What one change did: the batch's schedule now, the history row it added (None when the dates were already
    these), how many backers were mailed."""

    schedule: BatchSchedule
    change: BatchScheduleChange | None
    backers_told: int


def is_slip(announced: date | None, ship_on: date) -> bool:
    """A slip backers are told of: the ship date moves more than SLIP_DAYS after the one they were last told of."""
    return announced is not None and (ship_on - announced).days > SLIP_DAYS


def announced_after(announced: date | None, ship_on: date) -> date:
    """The ship date backers know after a change: the new one, except after a small slip they were not mailed about
    (small slips add up: the next one is measured from what they were told)."""
    if announced is None or ship_on <= announced or is_slip(announced, ship_on):
        return ship_on
    return announced


async def set_batch_dates(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    batch_ref: uuid.UUID | str,
    maker: User,
    *,
    production_on: date,
    ship_on: date,
    reason: str,
) -> DatesChanged:
    """Plan or move a batch's production and ship dates (the maker), with the reason backers will read.

    The change is kept in the history. When the ship date slips more than SLIP_DAYS past the date backers were last
    told of, each waiting backer of the batch is mailed once, with the reason. 422 naming `ship_on` when it comes
    before `production_on`, `reason` when empty; 409 `batch-shipped` for a shipped batch.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason", "say why the dates are set or moved: backers read it")
    if len(reason) > REASON_MAX:
        raise InvalidInput("reason", f"at most {REASON_MAX} characters")
    if ship_on < production_on:
        raise InvalidInput("ship_on", "the batch ships on or after the day its production starts")
    campaign, _ = await fulfillment_campaign(session, campaign_ref, maker, manage=True)
    await lock_campaign(session, campaign.id)
    if campaign.status not in PLANNING_STATUSES:
        raise NotFunded(f"The campaign is {campaign.status}; batch dates are planned while it is funded or fulfilling.")
    batch = await batch_of(session, campaign, batch_ref)
    if batch.status == "shipped":
        raise BatchShipped(f"Batch {batch.number} has shipped; its dates are history.")
    before = await session.get(BatchSchedule, (campaign.id, batch.number), with_for_update=True, populate_existing=True)
    if before is not None and (before.production_on, before.ship_on) == (production_on, ship_on):
        return DatesChanged(schedule=before, change=None, backers_told=0)  # sent again: nothing changes
    announced = before.announced_ship_on if before else None
    previous = (before.production_on, before.ship_on) if before else (None, None)
    told = await _mail_slip(session, campaign, batch, announced, ship_on, reason) if is_slip(announced, ship_on) else 0
    schedule: BatchSchedule = (
        await session.scalars(
            insert(BatchSchedule)
            .values(
                campaign_id=campaign.id,
                number=batch.number,
                production_on=production_on,
                ship_on=ship_on,
                announced_ship_on=announced_after(announced, ship_on),
            )
            .on_conflict_do_update(
                index_elements=[BatchSchedule.campaign_id, BatchSchedule.number],
                set_={
                    "production_on": production_on,
                    "ship_on": ship_on,
                    "announced_ship_on": announced_after(announced, ship_on),
                    "updated_at": func.now(),
                },
            )
            .returning(BatchSchedule)
            .execution_options(populate_existing=True)
        )
    ).one()
    change = BatchScheduleChange(
        campaign_id=campaign.id,
        number=batch.number,
        production_on=production_on,
        ship_on=ship_on,
        previous_production_on=previous[0],
        previous_ship_on=previous[1],
        reason=reason,
        changed_by=maker.id,
        backers_told=told,
    )
    session.add(change)
    await session.flush()
    await session.refresh(change)
    return DatesChanged(schedule=schedule, change=change, backers_told=told)


async def _mail_slip(
    session: AsyncSession, campaign: Campaign, batch: Batch, announced: date | None, ship_on: date, reason: str
) -> int:
    """Mail each backer still waiting for a package of `batch`: the new month, the old one, the maker's reason."""
    rows = await session.execute(
        select(Pledge.id, User.id.label("user_id"), User.email, User.locale, User.name)
        .join(Allocation, Allocation.pledge_id == Pledge.id)
        .join(User, User.id == Pledge.backer_id)
        .outerjoin(Shipment, Shipment.pledge_id == Pledge.id)
        .where(
            Allocation.batch_id == batch.id,
            Pledge.status.in_(SHIPPABLE_PLEDGE_STATUSES),
            Shipment.pledge_id.is_(None),
        )
        .order_by(Pledge.number)
    )
    facts = {
        "campaign_title": campaign.title,
        "batch_number": batch.number,
        "previous_month": announced.strftime("%Y-%m") if announced else None,
        "estimated_month": ship_on.strftime("%Y-%m"),
        "reason": reason,
    }
    return await mail_backers(session, BATCH_DELAYED, (mail_about_pledge(row, facts) for row in rows))


async def schedules_of(session: AsyncSession, campaign_id: uuid.UUID) -> dict[int, BatchSchedule]:
    rows = await session.scalars(
        select(BatchSchedule).where(BatchSchedule.campaign_id == campaign_id).execution_options(populate_existing=True)
    )
    return {row.number: row for row in rows}


async def date_history(session: AsyncSession, campaign_id: uuid.UUID) -> dict[int, list[BatchScheduleChange]]:
    """Every change of the campaign's batch dates, newest first, by batch number."""
    found: dict[int, list[BatchScheduleChange]] = {}
    rows = await session.scalars(
        select(BatchScheduleChange)
        .where(BatchScheduleChange.campaign_id == campaign_id)
        .order_by(BatchScheduleChange.changed_at.desc(), BatchScheduleChange.id)
    )
    for row in rows:
        found.setdefault(row.number, []).append(row)
    return found
