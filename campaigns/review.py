"""The sponsoring space's review: an operator who is not the maker approves, asks for changes or rejects.

Every review is kept (the campaign's whole history of decisions); the latest one is what the campaign shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns import lifecycle
from campaigns.access import move_campaign, visible_campaign
from campaigns.audit import record_audit
from campaigns.campaign_schemas import CHECKLIST_ITEMS, ReviewCreate
from campaigns.errors import FieldError, NotAllowed, ValidationFailed
from campaigns.languages import language_of
from campaigns.models import Campaign, Review, User
from campaigns.notifications import notify
from campaigns.service import campaign_facts
from campaigns.two_factor import require_two_factor

# The mail the maker gets for each decision.
DECISION_MAILS = {
    "approve": "campaign_approved",
    "request_changes": "campaign_changes_requested",
    "reject": "campaign_rejected",
}


class OwnCampaign(NotAllowed):
    type = "own-campaign"
    title = "A maker cannot review their own campaign"


def approval_problems(checklist: Mapping[str, bool | None], notes: str) -> list[FieldError]:
    """An approval needs every checklist item answered, and notes explaining any item answered `false`."""
    problems = [
        FieldError(f"checklist.{item}", "answer true or false before approving")
        for item in CHECKLIST_ITEMS
        if checklist.get(item) is None
    ]
    if any(checklist.get(item) is False for item in CHECKLIST_ITEMS) and not notes.strip():
        problems.append(FieldError("notes", "explain in the notes why the campaign is approved with an item false"))
    return problems


async def review_campaign(
    session: AsyncSession,
    campaign_ref: uuid.UUID | str,
    reviewer: User,
    review: ReviewCreate,
    *,
    base_url: str,
    client_address: str | None,
) -> Campaign:
    """Record the decision and move the campaign: approve -> approved, request_changes -> draft, reject -> rejected."""
    campaign, roles = await visible_campaign(session, campaign_ref, reviewer)
    if "maker" in roles:
        raise OwnCampaign("You made this campaign; another operator of its space must review it.")
    if roles & lifecycle.OPERATOR_OR_ADMIN:
        require_two_factor(reviewer)
    checklist = review.checklist.model_dump()
    if review.decision == "approve":
        lifecycle.check(campaign.status, review.decision, roles)
        problems = approval_problems(checklist, review.notes)
        if problems:
            raise ValidationFailed("The checklist is not complete enough to approve.", errors=problems)
    language = review.language or language_of(reviewer.locale)
    await move_campaign(
        session, campaign, review.decision, roles, actor_id=reviewer.id, note=review.notes, note_language=language
    )
    session.add(
        Review(
            campaign_id=campaign.id,
            reviewer_id=reviewer.id,
            decision=review.decision,
            notes=review.notes,
            language=language,
            checklist=checklist,
        )
    )
    await record_audit(
        session,
        reviewer.id,
        f"campaign.{review.decision}",
        "campaign",
        campaign.id,
        space_id=campaign.space_id,
        client_address=client_address,
        details={"title": campaign.title, "notes": review.notes},
    )
    maker = await session.get_one(User, campaign.maker_id)
    await notify(
        session,
        maker,
        DECISION_MAILS[review.decision],
        **campaign_facts(campaign, base_url),
        notes=review.notes,
        checklist={item: checklist.get(item) for item in CHECKLIST_ITEMS},
    )
    return campaign


async def reviews_of(session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User) -> list[Review]:
    """Every review of the campaign, oldest first: for its maker, its space's operators and admins."""
    campaign, roles = await visible_campaign(session, campaign_ref, viewer)
    if not roles & lifecycle.INSIDERS:
        raise NotAllowed("Only the maker, the space's operators and admins see a campaign's review history.")
    rows = await session.scalars(
        select(Review).where(Review.campaign_id == campaign.id).order_by(Review.created_at, Review.id)
    )
    return list(rows)
