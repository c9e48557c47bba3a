"""The deadline: closing live campaigns, funding them once every charge has settled, and tidying up after the
pledges that will never be charged (their reward slot freed, their saved card removed at Stripe).

Locks are taken in one order everywhere in the money code: the campaign row, then a pledge row, then the escrow
account (payments.ledger.hold_escrow). The sweep's steps here find and record; whatever calls Stripe is a job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import and_, exists, func, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import move_campaign
from campaigns.ids import parse_id
from campaigns.jobs import enqueue_job
from campaigns.languages import VERSIONS_FACT, mail_versions
from campaigns.lifecycle import SYSTEM
from campaigns.matching import fix_match_amount, match_cap_sum, match_worth, not_a_match, others_sum
from campaigns.models import Campaign, Pledge, Space, User
from campaigns.notifications import notify
from campaigns.pledges.lifecycle import (
    COUNTED_PLEDGE_STATUSES,
    ENDED_PLEDGE_STATUSES,
    WAITING_PLEDGE_STATUSES,
    PledgeStatus,
)
from campaigns.pledges.service import release_tier_slots
from campaigns.pledges.units import give_back_pledge_units
from campaigns.spaces import campaign_sponsor_fee_bps
from fulfillment.backer_mail import BackerMail, mail_about_pledge, mail_backers
from fulfillment.service import request_plan
from payments.gateway import RequestRefused
from payments.milestones import create_milestones
from payments.models import IN_DOUBT_ATTEMPT_STATUSES, ChargeAttempt, ChargeTerms
from payments.stripe_jobs import StripeWork

log = logging.getLogger("kindling.payments")

REMOVE_CARD = "payments.detach_card"
# A backer whose charge failed has this many campaign days to give a new card.
RETRY_WINDOW_DAYS = 7
# A job asked for this long ago and whose work is still not done has probably lost its message: ask again.
REQUEUE_AFTER_SECONDS = 120
# A charge in doubt is looked after sooner: a job that finds another one at work on it just stops.
IN_DOUBT_REQUEUE_SECONDS = 15
CLOSE_BATCH = 100
_CAMPAIGNS_DONE_WITH_CARDS = ("unsuccessful", "suspended")


def campaign_path(campaign: Campaign) -> str:
    return f"/campaigns/{campaign.slug}"


def in_doubt_attempt() -> Any:
    """SQL, correlated to `pledges`: a charge of the pledge may be at Stripe with its outcome not yet recorded."""
    return exists().where(ChargeAttempt.pledge_id == Pledge.id, ChargeAttempt.status.in_(IN_DOUBT_ATTEMPT_STATUSES))


def requeue_due(after_seconds: int = REQUEUE_AFTER_SECONDS) -> Any:
    """SQL: no payment job was asked for the pledge, or the last one was asked long enough ago to seem lost."""
    return or_(
        Pledge.payment_job_requested_at.is_(None),
        Pledge.payment_job_requested_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, after_seconds),
    )


# Closing


async def close_due_campaigns(
    session: AsyncSession, *, platform_fee_bps: int, day_seconds: int, limit: int = CLOSE_BATCH
) -> int:
    """The sweep's step: close every live campaign whose deadline has passed, `successful` when its pledges reach
    the goal, else `unsuccessful`; returns how many were closed.

    Each campaign is locked first (a pledge being taken holds a share lock on it, so the pledged sum read after the
    lock is final), then moved by the conditional UPDATE of `move_campaign`: two sweeps can never close it twice.
    Campaigns locked by someone else right now are left for the next sweep.
    """
    due = await session.scalars(
        select(Campaign)
        .where(Campaign.status == "live", Campaign.ends_at <= func.now())
        .order_by(Campaign.ends_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    closed = 0
    for campaign in list(due):
        await close_campaign(session, campaign, platform_fee_bps=platform_fee_bps, day_seconds=day_seconds)
        closed += 1
    return closed


async def close_campaign(session: AsyncSession, campaign: Campaign, *, platform_fee_bps: int, day_seconds: int) -> str:
    """Close one live campaign, locked by the caller. Returns its new status.

    A match counts toward the goal for what it is worth on the backers' pledges (campaigns.matching); on success its
    amount is fixed at that, before anything is charged."""
    others, cap = (
        await session.execute(
            select(others_sum(), match_cap_sum()).where(
                Pledge.campaign_id == campaign.id, Pledge.status.in_(COUNTED_PLEDGE_STATUSES)
            )
        )
    ).one()
    pledged = int(others) + match_worth(int(cap), int(others))
    succeeded = pledged >= campaign.goal
    if succeeded:
        await fix_match_amount(session, campaign.id, int(others))
    await move_campaign(
        session, campaign, "succeed" if succeeded else "fail", SYSTEM, actor_id=None, closed_at=func.now()
    )
    # A card never saved can no longer be: those pledges end here, whatever the outcome.
    await cancel_pledges(session, campaign, ("requires_payment_method",))
    maker = await session.get_one(User, campaign.maker_id)
    facts = {
        "campaign_id": str(campaign.id),
        "campaign_title": campaign.title,
        VERSIONS_FACT: mail_versions({"campaign_title": ("title", campaign.translations)}),
        "campaign_path": campaign_path(campaign),
        "pledged": pledged,
        "goal": campaign.goal,
        "currency": campaign.currency,
    }
    if succeeded:
        space = await session.get_one(Space, campaign.space_id)
        await session.execute(
            insert(ChargeTerms)
            .values(
                campaign_id=campaign.id,
                platform_fee_bps=platform_fee_bps,
                sponsor_fee_bps=campaign_sponsor_fee_bps(campaign, space),
                fund_share_bps=space.fund_share_bps if space.fund_currency == campaign.currency else 0,
                retry_window_seconds=RETRY_WINDOW_DAYS * day_seconds,
            )
            .on_conflict_do_nothing(index_elements=[ChargeTerms.campaign_id])
        )
        backers = await _backers_of(session, campaign.id, ("active",))
        await notify(session, maker, "campaign_successful", role="maker", backers=len(backers), **facts)
        await mail_backers(session, "campaign_successful", _backer_mails(backers, facts))
        log.info("campaign %s successful: %d of %d %s", campaign.id, pledged, campaign.goal, campaign.currency)
    else:
        backers = await _backers_of(session, campaign.id, WAITING_PLEDGE_STATUSES)
        await cancel_pledges(session, campaign, WAITING_PLEDGE_STATUSES)
        await notify(session, maker, "campaign_unsuccessful", role="maker", backers=len(backers), **facts)
        await mail_backers(session, "campaign_unsuccessful", _backer_mails(backers, facts))
        log.info("campaign %s unsuccessful: %d of %d %s", campaign.id, pledged, campaign.goal, campaign.currency)
    return campaign.status


async def _backers_of(session: AsyncSession, campaign_id: uuid.UUID, statuses: Collection[str]) -> list[Any]:
    rows = await session.execute(
        select(Pledge.id, Pledge.amount, User.id.label("user_id"), User.email, User.locale, User.name)
        .join(User, User.id == Pledge.backer_id)
        .where(Pledge.campaign_id == campaign_id, Pledge.status.in_(statuses), not_a_match())
        .order_by(Pledge.number)
    )
    return list(rows)


def _backer_mails(backers: Sequence[Any], facts: dict[str, Any]) -> list[BackerMail]:
    return [mail_about_pledge(row, {**facts, "role": "backer", "amount": row.amount}) for row in backers]


async def cancel_pledges(session: AsyncSession, campaign: Campaign, statuses: Collection[str]) -> list[uuid.UUID]:
    """Cancel the campaign's pledges in `statuses` that have no charge in doubt, free their reward slots and ask for
    their saved cards to be removed; returns their ids. Charges in doubt finish first (payments.charging)."""
    rows = (
        await session.execute(
            update(Pledge)
            .where(Pledge.campaign_id == campaign.id, Pledge.status.in_(statuses), not_(in_doubt_attempt()))
            .values(
                status=PledgeStatus.CANCELLED,
                cancelled_at=func.now(),
                payment_job_requested_at=func.now(),
                retry_until=None,
            )
            .returning(Pledge.id, Pledge.tier_id, Pledge.payment_method_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    freed: dict[uuid.UUID, int] = {}
    for row in rows:
        if row.tier_id is not None:
            freed[row.tier_id] = freed.get(row.tier_id, 0) + 1
        if row.payment_method_id is not None:
            enqueue_job(session, REMOVE_CARD, row.id)
    # Units first, then the slots: the order the reservation takes them in, so the two never wait on each other.
    await give_back_pledge_units(session, [row.id for row in rows])
    for tier_id, count in freed.items():
        await release_tier_slots(session, tier_id, count)
    return [row.id for row in rows]


# Funding


def _waiting_pledge() -> Any:
    """SQL, correlated to `campaigns`: a pledge the campaign still waits on. Two EXISTS, each answered from an index
    (pledges by campaign and status; charge attempts in doubt), rather than one whose OR scans every pledge."""
    waiting = exists().where(Pledge.campaign_id == Campaign.id, Pledge.status.in_(WAITING_PLEDGE_STATUSES))
    in_doubt = exists().where(
        Pledge.campaign_id == Campaign.id,
        ChargeAttempt.pledge_id == Pledge.id,
        ChargeAttempt.status.in_(IN_DOUBT_ATTEMPT_STATUSES),
    )
    return or_(waiting, in_doubt)


async def fund_if_settled(session: AsyncSession, campaign: Campaign) -> bool:
    """successful → funded once no pledge is waiting (every one collected, dropped, cancelled or refunded): the
    escrow milestones are made and fulfillment is asked to plan (its job also mails the address survey).

    The caller holds the campaign's row lock. Under FOR UPDATE, of two outcomes recorded at once the one that commits
    last sees the other and funds. Under FOR SHARE (charge outcomes, payments.charging.record_charge_outcomes, which
    must not queue behind one another) the last two outcomes recorded at once may each see the other still waiting;
    the sweep's `fund_settled_campaigns` then funds it. Exactly once either way (`move_campaign` is a conditional
    UPDATE). Returns whether this call funded it.
    """
    if campaign.status != "successful":
        return False
    settled = await session.scalar(select(not_(_waiting_pledge())).where(Campaign.id == campaign.id))
    if not settled:
        return False
    await move_campaign(session, campaign, "fund", SYSTEM, actor_id=None)
    await create_milestones(session, campaign)
    request_plan(session, campaign.id)
    log.info("campaign %s funded", campaign.id)
    return True


async def lock_campaign(session: AsyncSession, campaign_id: uuid.UUID) -> Campaign | None:
    """The campaign row, locked until the transaction ends and read afresh."""
    campaign: Campaign | None = await session.scalar(
        select(Campaign).where(Campaign.id == campaign_id).with_for_update().execution_options(populate_existing=True)
    )
    return campaign


async def fund_settled_campaigns(session: AsyncSession, among: Collection[uuid.UUID] | None = None) -> int:
    """The sweep's step: fund successful campaigns (of `among`, when given) that wait on nobody, when no charge
    outcome did it: say the last waiting pledge was dropped, or the last two outcomes were recorded at once and each
    saw the other still waiting."""
    due_now = select(Campaign.id).where(Campaign.status == "successful", not_(_waiting_pledge()))
    if among is not None:
        due_now = due_now.where(Campaign.id.in_(among))
    due = await session.scalars(due_now.limit(CLOSE_BATCH))
    funded = 0
    for campaign_id in list(due):
        campaign = await lock_campaign(session, campaign_id)
        if campaign is not None and await fund_if_settled(session, campaign):
            funded += 1
    return funded


# Saved cards that are no longer needed


async def remove_saved_card(work: StripeWork, pledge_ref: str) -> bool:
    """The "payments.detach_card" job: forget, at Stripe, the card of a pledge that will never be charged (its
    campaign failed or was suspended, or it was dropped). Returns whether a card was removed."""
    pledge_id = parse_job_id(pledge_ref)
    if pledge_id is None:
        return False
    async with work.transaction() as session:
        payment_method_id: str | None = await session.scalar(
            select(Pledge.payment_method_id).where(Pledge.id == pledge_id, _card_no_longer_needed())
        )
    if payment_method_id is None:
        return False
    await work.wait_for_turn()
    try:
        await work.gateway.detach_payment_method(payment_method_id)
    except RequestRefused:
        # Stripe has no such card (any longer): there is nothing left to remove, and asking again would never end.
        log.warning("pledge %s: its saved card %s is unknown to Stripe; forgotten here", pledge_id, payment_method_id)
    async with work.transaction() as session:
        await session.execute(
            update(Pledge)
            .where(Pledge.id == pledge_id, Pledge.payment_method_id == payment_method_id)
            .values(payment_method_id=None)
        )
    log.info("pledge %s: saved card removed", pledge_id)
    return True


def _card_no_longer_needed() -> Any:
    """SQL, correlated to `pledges`: a pledge that will never be charged and still has a saved card."""
    campaign_done = (
        select(Campaign.id)
        .where(Campaign.id == Pledge.campaign_id, Campaign.status.in_(_CAMPAIGNS_DONE_WITH_CARDS))
        .exists()
    )
    return and_(
        Pledge.payment_method_id.is_not(None),
        Pledge.status.in_(ENDED_PLEDGE_STATUSES),
        or_(Pledge.status == PledgeStatus.DROPPED, campaign_done),
        not_(in_doubt_attempt()),
    )


async def request_card_removals(session: AsyncSession, *, limit: int = 500) -> int:
    """The sweep's step: ask again to remove the cards whose job seems lost."""
    asked = await session.scalars(
        update(Pledge)
        .where(
            Pledge.id.in_(
                select(Pledge.id).where(_card_no_longer_needed(), requeue_due()).order_by(Pledge.number).limit(limit)
            )
        )
        .values(payment_job_requested_at=func.now())
        .returning(Pledge.id)
        .execution_options(synchronize_session=False)
    )
    ids = list(asked)
    for pledge_id in ids:
        enqueue_job(session, REMOVE_CARD, pledge_id)
    return len(ids)


def parse_job_id(ref: str) -> uuid.UUID | None:
    ident = parse_id(ref)
    if ident is None:
        log.warning("%r is not an id", ref)
    return ident
