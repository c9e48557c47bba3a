"""Matching: a space (or a sponsor it names) matches a campaign's backers 1:1 up to a cap.

The match is a real pledge (`pledges.is_match`), owned by the operator who set it up and gave the card, with no
reward: its card is saved by the same SetupIntent flow as any pledge, and the close charges, retries, refunds and
calls it off like any pledge. Its terms (the sponsor's name, the cap) are kept beside it in `matches`.

While the campaign is live the match is worth LEAST(cap, what the other counted pledges add up to), and that is what
it adds to `pledged` and toward the goal (`pledged_and_backers`). The close fixes its amount at that value, under
the campaign's lock, before anything is charged (`fix_match_amount`): the backers whose charges then fail do not
change it. It is never a backer: counts, backer lists and backer mails leave it out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, distinct, func, not_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import roles_on, visible_campaign
from campaigns.audit import record_audit
from campaigns.errors import Conflict, InvalidInput, NotAllowed, NotFound
from campaigns.models import Campaign, Pledge, SpaceOperator, User, new_id
from campaigns.pledges.lifecycle import (
    COUNTED_PLEDGE_STATUSES,
    ENDED_PLEDGE_STATUSES,
    OPEN_PLEDGE_STATUSES,
    PledgeAction,
    PledgeStatus,
    outcome,
)
from campaigns.pledges.models import Match, PledgeItem
from campaigns.pledges.service import AlreadyPledged, live_campaign_for_pledging
from campaigns.two_factor import require_two_factor

SPONSOR_NAME_LIMIT = 120
# A cap beyond this is a typing mistake, not a promise (10^12 minor units).
CAP_LIMIT = 10**12
ONE_MATCH_INDEX = "uq_pledges_one_match_per_campaign"
ONE_PLEDGE_INDEX = "uq_pledges_one_per_backer"


class AlreadyMatched(Conflict):
    type = "already-matched"
    title = "This campaign is matched already"


class NotSponsor(Conflict):
    type = "not-sponsor"
    title = "Only the sponsoring space matches a campaign"


def match_worth(cap: int, others: int) -> int:
    """1:1 up to the cap: the match gives what the other pledges give, never more than the cap, never below 0."""
    return max(0, min(cap, others))


def others_sum() -> ColumnElement[Any]:
    """SQL aggregate over counted pledges: what the backers (not the match) pledged."""
    return func.coalesce(func.sum(Pledge.amount).filter(not_(Pledge.is_match)), 0)


def match_cap_sum() -> ColumnElement[Any]:
    """SQL aggregate over counted pledges: the match's amount (its cap while live, fixed at the close), or 0."""
    return func.coalesce(func.sum(Pledge.amount).filter(Pledge.is_match), 0)


def pledged_and_backers() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """SQL aggregates over a campaign's counted pledges: `pledged` (the backers' pledges plus what the match is worth
    on them) and `backers` (distinct people, the match's owner left out)."""
    others = others_sum()
    pledged = others + func.least(match_cap_sum(), others)
    backers = func.count(distinct(Pledge.backer_id)).filter(not_(Pledge.is_match))
    return pledged, backers


def not_a_match() -> ColumnElement[bool]:
    """SQL: the pledge is a backer's, not a sponsor's match (for counts, backer lists, mails, audiences)."""
    return not_(Pledge.is_match)


@dataclass(frozen=True)
class MatchView:
    pledge_id: uuid.UUID
    campaign_id: uuid.UUID
    space_id: uuid.UUID
    owner_id: uuid.UUID
    sponsor_name: str
    cap: int
    currency: str
    # What it is worth now: LEAST(cap, the backers' pledges) while live; its fixed amount after the close.
    matched: int
    status: str
    created_at: datetime


async def campaign_match(session: AsyncSession, campaign: Campaign) -> MatchView | None:
    """The campaign's match that is still in play (not withdrawn, not dropped), with what it is worth now (nothing
    until its card is saved)."""
    row = (
        await session.execute(
            select(Match, Pledge.status, Pledge.amount, Pledge.backer_id)
            .join(Pledge, Pledge.id == Match.pledge_id)
            .where(Match.campaign_id == campaign.id, Pledge.status.not_in(ENDED_PLEDGE_STATUSES))
        )
    ).first()
    if row is None:
        return None
    match, status, amount, owner_id = row
    if status not in COUNTED_PLEDGE_STATUSES:
        matched = 0  # no card saved yet: it counts for nothing
    elif campaign.status == "live":
        others = await session.scalar(
            select(others_sum()).where(Pledge.campaign_id == campaign.id, Pledge.status.in_(COUNTED_PLEDGE_STATUSES))
        )
        matched = match_worth(match.cap, int(others or 0))
    else:
        matched = int(amount)
    return MatchView(
        pledge_id=match.pledge_id,
        campaign_id=match.campaign_id,
        space_id=match.space_id,
        owner_id=owner_id,
        sponsor_name=match.sponsor_name,
        cap=match.cap,
        currency=match.currency,
        matched=matched,
        status=status,
        created_at=match.created_at,
    )


async def _sponsoring_operator(session: AsyncSession, campaign: Campaign, user: User) -> None:
    """An operator of the campaign's sponsoring space (with two-factor on); an operator of another space is told
    the campaign is not theirs to match (409), anyone else that they may not (403)."""
    if "operator" in await roles_on(session, campaign, user):
        require_two_factor(user)
        return
    operates_any = await session.scalar(select(SpaceOperator.space_id).where(SpaceOperator.user_id == user.id))
    if operates_any is not None and user.id != campaign.maker_id:
        raise NotSponsor("Your space does not sponsor this campaign: only its sponsoring space may match it.")
    raise NotAllowed("Only an operator of the sponsoring space matches a campaign.")


def _checked_terms(cap: int, sponsor_name: str) -> str:
    name = " ".join(sponsor_name.split())
    if not name:
        raise InvalidInput("sponsor_name", "must not be empty")
    if len(name) > SPONSOR_NAME_LIMIT:
        raise InvalidInput("sponsor_name", f"must be at most {SPONSOR_NAME_LIMIT} characters")
    if not 0 < cap <= CAP_LIMIT:
        raise InvalidInput("cap", f"must be more than 0 and at most {CAP_LIMIT} (minor units)")
    return name


async def reserve_match(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    user: User,
    *,
    cap: int,
    sponsor_name: str,
    client_address: str | None,
) -> Pledge:
    """The match's pledge (waiting for its card) and its terms, on a live campaign sponsored by the user's space.

    The campaign is share-locked while live (so it cannot close meanwhile); one open match per campaign is the
    partial unique index `uq_pledges_one_match_per_campaign`: of two set up at once, the second is 409
    `already-matched`. The operator's own backing of the campaign, if any, stays theirs: 409 `already-pledged`.
    """
    campaign, _roles = await visible_campaign(session, campaign_ref, user)
    await _sponsoring_operator(session, campaign, user)
    name = _checked_terms(cap, sponsor_name)
    campaign = await live_campaign_for_pledging(session, campaign.id)
    pledge_id = new_id()
    try:
        async with session.begin_nested():
            session.add(
                Pledge(
                    id=pledge_id,
                    campaign_id=campaign.id,
                    backer_id=user.id,
                    tier_id=None,
                    is_match=True,
                    amount=cap,
                    bonus=cap,
                    shipping_fee=0,
                    currency=campaign.currency,
                )
            )
            await session.flush()
    except IntegrityError as exc:
        violated = getattr(exc.orig.__cause__, "constraint_name", None) if exc.orig is not None else None
        if violated not in (ONE_MATCH_INDEX, ONE_PLEDGE_INDEX):
            raise
        # Both indexes may refuse the same row (the owner of the match trying again): the match is the one to name.
        if violated == ONE_MATCH_INDEX or await campaign_match(session, campaign) is not None:
            raise AlreadyMatched("This campaign has a match already: withdraw it first to set up another.") from None
        raise AlreadyPledged("You back this campaign yourself: another of its operators must match it.") from None
    session.add(PledgeItem(pledge_id=pledge_id, position=0, kind="bonus", quantity=1, unit_amount=cap))
    session.add(
        Match(
            pledge_id=pledge_id,
            campaign_id=campaign.id,
            space_id=campaign.space_id,
            sponsor_name=name,
            cap=cap,
            currency=campaign.currency,
            created_by=user.id,
        )
    )
    await record_audit(
        session,
        user.id,
        "campaign.match",
        "campaign",
        campaign.id,
        space_id=campaign.space_id,
        client_address=client_address,
        details={"cap": cap, "currency": campaign.currency, "sponsor_name": name, "pledge_id": str(pledge_id)},
    )
    await session.flush()
    return await session.get_one(Pledge, pledge_id)


async def withdraw_match(
    session: AsyncSession, campaign_ref: uuid.UUID | str, user: User, *, client_address: str | None
) -> MatchView:
    """Withdraw the campaign's match while it is live (an operator of the sponsoring space): its pledge is cancelled
    by one conditional UPDATE. 404 when there is none to withdraw."""
    campaign, _roles = await visible_campaign(session, campaign_ref, user)
    await _sponsoring_operator(session, campaign, user)
    campaign = await live_campaign_for_pledging(session, campaign.id)
    match = await campaign_match(session, campaign)
    if match is None:
        raise NotFound("This campaign has no match to withdraw.")
    withdrawn = await session.scalar(
        update(Pledge)
        .where(Pledge.id == match.pledge_id, Pledge.status.in_(OPEN_PLEDGE_STATUSES))
        .values(status=outcome(PledgeAction.CANCEL), cancelled_at=func.now())
        .returning(Pledge.id)
    )
    if withdrawn is None:
        raise NotFound("This campaign has no match to withdraw.")
    await record_audit(
        session,
        user.id,
        "campaign.match_withdraw",
        "campaign",
        campaign.id,
        space_id=campaign.space_id,
        client_address=client_address,
        details={"pledge_id": str(match.pledge_id)},
    )
    return replace(match, status=PledgeStatus.CANCELLED.value, matched=0)


async def fix_match_amount(session: AsyncSession, campaign_id: uuid.UUID, others: int) -> int | None:
    """At a successful close, under the campaign's lock and before any charge: the match's amount (and its one line)
    become LEAST(cap, `others`), what the backers' counted pledges add up to. Returns the fixed amount, or None when
    the campaign has no active match."""
    if others <= 0:
        return None
    fixed = (
        await session.execute(
            update(Pledge)
            .where(
                Pledge.campaign_id == campaign_id,
                Pledge.is_match,
                Pledge.status == PledgeStatus.ACTIVE,
            )
            .values(amount=func.least(Pledge.amount, others), bonus=func.least(Pledge.bonus, others))
            .returning(Pledge.id, Pledge.amount)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if fixed is None:
        return None
    await session.execute(
        update(PledgeItem)
        .where(PledgeItem.pledge_id == fixed.id, PledgeItem.kind == "bonus")
        .values(unit_amount=fixed.amount)
    )
    return int(fixed.amount)
