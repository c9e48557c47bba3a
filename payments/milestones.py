"""Escrow milestones: the maker asks, an operator of the sponsoring space (never the maker) releases.

The release rule. A milestone's amount is fixed when it is released, from the escrow held at that moment: the held
escrow is split over the milestones not yet released in proportion to their shares (payments.money.milestone_amounts),
and the milestone gets its part. So with nothing arriving in between, 50/30/20 releases exactly 50 %, 30 % and 20 %;
money that arrives or leaves later (a pre-order, a refund) is spread over the milestones still to come; and the last
milestone releases all that is left, so the releases add up to the escrow to the minor unit.

Locks are taken in one order everywhere: the campaign row, then the milestone, then the escrow account
(payments.ledger.hold_escrow). Suspension must follow the same order.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import visible_campaign
from campaigns.accounts import require_verified_email
from campaigns.audit import record_audit
from campaigns.errors import Conflict, FieldError, NotAllowed, NotFound, ValidationFailed
from campaigns.ids import parse_id
from campaigns.models import Campaign, Space, User
from campaigns.spaces import get_space, operates
from campaigns.two_factor import require_two_factor
from payments.ledger import hold_escrow, record_release
from payments.models import MILESTONE_CONDITIONS, Milestone, Payout
from payments.money import BPS, milestone_amounts

FUNDED_OR_LATER = ("funded", "fulfilling", "fulfilled")
OPEN_MILESTONE_STATUSES = ("pending", "requested")
MAX_MILESTONES = 10


@dataclass(frozen=True)
class PlannedMilestone:
    name: str
    share_bps: int
    unlocks_on: str


DEFAULT_MILESTONE_PLAN = (
    PlannedMilestone("Funding", 5000, "funded"),
    PlannedMilestone("First batch confirmed", 3000, "first_batch_confirmed"),
    PlannedMilestone("Shipping done", 2000, "shipping_done"),
)


class MilestoneNotDue(Conflict):
    type = "milestone-not-due"
    title = "The campaign has not reached this milestone yet"


class MilestoneNotPending(Conflict):
    type = "milestone-not-pending"
    title = "This milestone has already been requested, released or cancelled"


class MilestoneNotRequested(Conflict):
    type = "milestone-not-requested"
    title = "Only a requested milestone can be released"


class EscrowNotReleasable(Conflict):
    type = "campaign-not-funded"
    title = "Escrow is released only while the campaign is funded, fulfilling or fulfilled"


class NothingToPay(Conflict):
    type = "no-payout"
    title = "This milestone has no payout to mark paid"


class PayoutAlreadyPaid(Conflict):
    type = "payout-already-paid"
    title = "This payout is already marked paid"


@dataclass(frozen=True)
class MilestoneFigures:
    """A milestone with its amount: fixed once released, otherwise what it would release now (0 when cancelled)."""

    milestone: Milestone
    amount: int
    due: bool
    payout: Payout | None


def milestone_plan_of(space: Space) -> tuple[PlannedMilestone, ...]:
    """The space's plan today: what campaigns launched from now on get."""
    return _plan(space.milestone_plan)


def campaign_milestone_plan(campaign: Campaign, space: Space) -> tuple[PlannedMilestone, ...]:
    """The plan the campaign launched with, whatever its space has changed since; a campaign that never went
    through a launch (made straight in the database) takes its space's plan of today."""
    return _plan(campaign.milestone_plan if campaign.launched_at is not None else space.milestone_plan)


def _plan(stored: Sequence[Any] | None) -> tuple[PlannedMilestone, ...]:
    if stored is None:
        return DEFAULT_MILESTONE_PLAN
    return tuple(
        PlannedMilestone(str(item["name"]), int(item["share_bps"]), str(item["unlocks_on"])) for item in stored
    )


def check_milestone_plan(plan: Sequence[PlannedMilestone]) -> None:
    """A plan has 1 to 10 named milestones with positive shares that add up to exactly 10000 basis points."""
    errors = []
    if not 1 <= len(plan) <= MAX_MILESTONES:
        errors.append(FieldError("milestones", f"must list 1 to {MAX_MILESTONES} milestones"))
    for i, planned in enumerate(plan):
        if not planned.name.strip():
            errors.append(FieldError(f"milestones.{i}.name", "must not be empty"))
        if not 1 <= planned.share_bps <= BPS:
            errors.append(FieldError(f"milestones.{i}.share_bps", f"must be from 1 to {BPS}"))
        if planned.unlocks_on not in MILESTONE_CONDITIONS:
            errors.append(FieldError(f"milestones.{i}.unlocks_on", f"must be one of {', '.join(MILESTONE_CONDITIONS)}"))
    total = sum(planned.share_bps for planned in plan)
    if plan and total != BPS:
        errors.append(FieldError("milestones", f"shares must add up to {BPS} basis points, not {total}"))
    if errors:
        raise ValidationFailed("The milestone plan is invalid.", errors=errors)


def set_milestone_plan(space: Space, plan: Sequence[PlannedMilestone] | None) -> tuple[PlannedMilestone, ...]:
    """Give the space its own plan (None: back to the default), for the campaigns launched from now on; those
    launched already keep the plan they launched with."""
    if plan is not None:
        check_milestone_plan(plan)
    space.milestone_plan = None if plan is None else [asdict(planned) for planned in plan]
    return milestone_plan_of(space)


async def change_milestone_plan(
    session: AsyncSession,
    space_id: uuid.UUID | str,
    user: User,
    plan: Sequence[PlannedMilestone] | None,
    *,
    client_address: str | None,
) -> tuple[Space, tuple[PlannedMilestone, ...]]:
    """An operator of the space or an admin sets its plan (None: back to the default); audited."""
    space = await get_space(session, space_id)
    if not (user.is_admin or await operates(session, user, space.id)):
        raise NotAllowed("Only an operator of the space or an admin sets its milestone plan.")
    require_two_factor(user)
    saved = set_milestone_plan(space, plan)
    await record_audit(
        session,
        user.id,
        "space.milestone_plan_change",
        "space",
        space.id,
        space_id=space.id,
        client_address=client_address,
        details={"milestones": None if plan is None else [asdict(planned) for planned in saved]},
    )
    return space, saved


def milestone_is_due(milestone: Milestone, campaign: Campaign) -> bool:
    """Whether the campaign has reached what the milestone waits for: funding (funded or later), the first
    manufacturing batch confirmed, or shipping done (fulfilled)."""
    if milestone.unlocks_on == "funded":
        return campaign.status in FUNDED_OR_LATER
    if milestone.unlocks_on == "first_batch_confirmed":
        return campaign.status in FUNDED_OR_LATER and campaign.first_batch_confirmed_at is not None
    return campaign.status == "fulfilled"


def amounts_now(escrow_held: int, milestones: Sequence[Milestone]) -> dict[uuid.UUID, int]:
    """The release rule (see the module's docstring): each milestone's amount if it were released now. Escrow below
    zero (a dispute took more than it held) releases nothing."""
    escrow_held = max(escrow_held, 0)
    still_open = [m for m in milestones if m.status in OPEN_MILESTONE_STATUSES]
    open_amounts = dict(
        zip(
            [m.id for m in still_open],
            milestone_amounts(escrow_held, [m.share_bps for m in still_open]) if still_open else [],
            strict=True,
        )
    )
    return {m.id: m.amount if m.amount is not None else open_amounts.get(m.id, 0) for m in milestones}


async def create_milestones(session: AsyncSession, campaign: Campaign) -> list[Milestone]:
    """Give a funded campaign the milestones of the plan it launched with; a second call changes nothing."""
    existing = await milestones_of(session, campaign.id)
    if existing:
        return existing
    space = await session.get_one(Space, campaign.space_id)
    await session.execute(
        insert(Milestone)
        .values(
            [
                {
                    "campaign_id": campaign.id,
                    "position": position,
                    "name": planned.name,
                    "share_bps": planned.share_bps,
                    "unlocks_on": planned.unlocks_on,
                }
                for position, planned in enumerate(campaign_milestone_plan(campaign, space))
            ]
        )
        .on_conflict_do_nothing(index_elements=[Milestone.campaign_id, Milestone.position])
    )
    return await milestones_of(session, campaign.id)


async def milestones_of(session: AsyncSession, campaign_id: uuid.UUID) -> list[Milestone]:
    result = await session.scalars(
        select(Milestone).where(Milestone.campaign_id == campaign_id).order_by(Milestone.position)
    )
    return list(result.all())


async def milestone_figures(session: AsyncSession, campaign: Campaign, escrow_held: int) -> list[MilestoneFigures]:
    milestones = await milestones_of(session, campaign.id)
    payouts = await session.scalars(select(Payout).where(Payout.campaign_id == campaign.id))
    payout_of = {payout.milestone_id: payout for payout in payouts}
    amounts = amounts_now(escrow_held, milestones)
    return [
        MilestoneFigures(
            m,
            amounts[m.id],
            m.status == "pending" and milestone_is_due(m, campaign),
            payout_of.get(m.id),
        )
        for m in milestones
    ]


async def _lock_campaign(session: AsyncSession, campaign_id: uuid.UUID) -> Campaign:
    """The campaign, share-locked: its status cannot change until this transaction ends."""
    campaign = await session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    if campaign is None:
        raise NotFound("No such campaign.")
    return campaign


async def _lock_milestone(session: AsyncSession, campaign: Campaign, milestone_id: uuid.UUID | str) -> Milestone:
    ident = parse_id(milestone_id)
    milestone = (
        await session.scalar(
            select(Milestone)
            .where(Milestone.id == ident, Milestone.campaign_id == campaign.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if ident
        else None
    )
    if milestone is None:
        raise NotFound("No such milestone in this campaign.")
    return milestone


async def request_milestone(
    session: AsyncSession, campaign_id: uuid.UUID | str, milestone_id: uuid.UUID | str, user: User
) -> Milestone:
    """The maker asks for a milestone's release once the campaign has reached it."""
    campaign, roles = await visible_campaign(session, campaign_id, user)
    if "maker" not in roles:
        raise NotAllowed("Only the maker asks for a milestone's release.")
    require_verified_email(user, "asking for a payout")
    campaign = await _lock_campaign(session, campaign.id)
    milestone = await _lock_milestone(session, campaign, milestone_id)
    if milestone.status != "pending":
        raise MilestoneNotPending(f"The milestone {milestone.name!r} is already {milestone.status}.")
    if not milestone_is_due(milestone, campaign):
        raise MilestoneNotDue(f"The milestone {milestone.name!r} can be requested once {_condition(milestone)}.")
    requested = await session.scalar(
        update(Milestone)
        .where(Milestone.id == milestone.id, Milestone.status == "pending")
        .values(status="requested", requested_at=func.now())
        .returning(Milestone)
        .execution_options(populate_existing=True)
    )
    assert requested is not None  # the row is locked and was pending
    return requested


def _condition(milestone: Milestone) -> str:
    return {
        "funded": "the campaign is funded",
        "first_batch_confirmed": "the first manufacturing batch is confirmed",
        "shipping_done": "shipping is done",
    }[milestone.unlocks_on]


async def release_milestone(
    session: AsyncSession,
    campaign_id: uuid.UUID | str,
    milestone_id: uuid.UUID | str,
    user: User,
    *,
    client_address: str | None,
) -> Milestone:
    """An operator of the sponsoring space, never the maker, releases a requested milestone: its amount (the release
    rule) moves from escrow to the maker's payable account and a payout to the maker is opened."""
    campaign, roles = await visible_campaign(session, campaign_id, user)
    if "maker" in roles:
        raise NotAllowed("A maker never releases escrow to themselves; an operator of the sponsoring space does.")
    if "operator" not in roles:
        raise NotAllowed("Only an operator of the sponsoring space releases escrow.")
    require_two_factor(user)
    campaign = await _lock_campaign(session, campaign.id)
    if campaign.status not in FUNDED_OR_LATER:
        raise EscrowNotReleasable(f"The campaign is {campaign.status}; escrow is not released now.")
    milestone = await _lock_milestone(session, campaign, milestone_id)
    if milestone.status != "requested":
        raise MilestoneNotRequested(f"The milestone {milestone.name!r} is {milestone.status}, not requested.")
    held = await hold_escrow(session, campaign)
    amount = amounts_now(held, await milestones_of(session, campaign.id))[milestone.id]
    released = await session.scalar(
        update(Milestone)
        .where(Milestone.id == milestone.id, Milestone.status == "requested")
        .values(status="released", amount=amount, released_at=func.now(), released_by=user.id)
        .returning(Milestone)
        .execution_options(populate_existing=True)
    )
    assert released is not None  # the row is locked and was requested
    if amount > 0:
        await record_release(session, campaign, released)
        await session.execute(
            insert(Payout).values(
                milestone_id=released.id, campaign_id=campaign.id, amount=amount, currency=campaign.currency
            )
        )
    await record_audit(
        session,
        user.id,
        "milestone.release",
        "milestone",
        released.id,
        space_id=campaign.space_id,
        client_address=client_address,
        details={
            "campaign_id": str(campaign.id),
            "name": released.name,
            "amount": amount,
            "currency": campaign.currency,
        },
    )
    return released


async def mark_payout_paid(
    session: AsyncSession,
    campaign_id: uuid.UUID | str,
    milestone_id: uuid.UUID | str,
    user: User,
    bank_reference: str,
    *,
    client_address: str | None,
) -> Payout:
    """An operator of the sponsoring space or an admin records that a released milestone reached the maker's bank."""
    campaign, roles = await visible_campaign(session, campaign_id, user)
    if not roles & {"operator", "admin"}:
        raise NotAllowed("Only an operator of the sponsoring space or an admin marks payouts paid.")
    require_two_factor(user)
    ident = parse_id(milestone_id)
    milestone = await session.get(Milestone, ident) if ident else None
    if milestone is None or milestone.campaign_id != campaign.id:
        raise NotFound("No such milestone in this campaign.")
    paid = await session.scalar(
        update(Payout)
        .where(Payout.milestone_id == milestone.id, Payout.status == "pending")
        .values(status="paid", bank_reference=bank_reference, paid_at=func.now(), paid_by=user.id)
        .returning(Payout)
        .execution_options(populate_existing=True)
    )
    if paid is not None:
        await record_audit(
            session,
            user.id,
            "payout.mark_paid",
            "payout",
            paid.id,
            space_id=campaign.space_id,
            client_address=client_address,
            details={
                "campaign_id": str(campaign.id),
                "milestone_id": str(milestone.id),
                "amount": paid.amount,
                "currency": paid.currency,
                "bank_reference": bank_reference,
            },
        )
        return paid
    payout = await session.scalar(select(Payout).where(Payout.milestone_id == milestone.id))
    if payout is None:
        raise NothingToPay(f"The milestone {milestone.name!r} is {milestone.status}; it has no payout to pay.")
    raise PayoutAlreadyPaid(f"This payout was already marked paid with the reference {payout.bank_reference!r}.")


async def cancel_open_milestones(session: AsyncSession, campaign: Campaign) -> int:
    """For suspension: the milestones not yet released never will be. Returns how many were cancelled."""
    result = await session.scalars(
        update(Milestone)
        .where(Milestone.campaign_id == campaign.id, Milestone.status.in_(OPEN_MILESTONE_STATUSES))
        .values(status="cancelled")
        .returning(Milestone.id)
    )
    return len(result.all())
