"""Who someone is to a campaign (maker, operator of its space, admin), and what they may therefore see."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import ColumnElement, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns import lifecycle
from campaigns.errors import Conflict, NotFound
from campaigns.ids import parse_id
from campaigns.lifecycle import Role
from campaigns.models import Campaign, CampaignEvent, SpaceOperator, User

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,119}$")


class CampaignChanged(Conflict):
    type = "campaign-changed"
    title = "The campaign changed while you were acting on it"


async def roles_on(session: AsyncSession, campaign: Campaign, user: User | None) -> frozenset[Role]:
    if user is None:
        return frozenset()
    operates = user.id != campaign.maker_id and await _operates(session, user.id, campaign.space_id)
    return roles_from(campaign, user, frozenset({campaign.space_id}) if operates else frozenset())


def roles_from(campaign: Campaign, user: User | None, operated_spaces: frozenset[uuid.UUID]) -> frozenset[Role]:
    """The maker is never also an operator of their own campaign, even when they operate its space."""
    if user is None:
        return frozenset()
    roles: set[Role] = set()
    if user.id == campaign.maker_id:
        roles.add("maker")
    elif campaign.space_id in operated_spaces:
        roles.add("operator")
    if user.is_admin:
        roles.add("admin")
    return frozenset(roles)


async def operated_spaces(session: AsyncSession, user: User | None) -> frozenset[uuid.UUID]:
    if user is None:
        return frozenset()
    return frozenset(await session.scalars(select(SpaceOperator.space_id).where(SpaceOperator.user_id == user.id)))


async def _operates(session: AsyncSession, user_id: uuid.UUID, space_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(SpaceOperator.user_id).where(SpaceOperator.space_id == space_id, SpaceOperator.user_id == user_id)
    )
    return found is not None


def visible_to(viewer: User | None) -> ColumnElement[bool]:
    """The SQL condition for the campaigns `viewer` may see: public ones, plus their own and their spaces'."""
    public = Campaign.status.in_(lifecycle.PUBLIC_STATUSES)
    if viewer is None:
        return public
    if viewer.is_admin:
        return true()
    operated = select(SpaceOperator.space_id).where(SpaceOperator.user_id == viewer.id)
    return or_(public, Campaign.maker_id == viewer.id, Campaign.space_id.in_(operated))


async def find_campaign(session: AsyncSession, ref: uuid.UUID | str) -> Campaign | None:
    """By id, or by slug when `ref` is not a UUID."""
    ident = parse_id(ref)
    if ident is not None:
        return await session.get(Campaign, ident)
    if not _SLUG.match(str(ref)):
        return None
    return await session.scalar(select(Campaign).where(Campaign.slug == str(ref)))


async def visible_campaign(
    session: AsyncSession, ref: uuid.UUID | str, viewer: User | None
) -> tuple[Campaign, frozenset[Role]]:
    """The campaign and the viewer's roles on it; NotFound when it does not exist or the viewer may not see it."""
    campaign = await find_campaign(session, ref)
    if campaign is None:
        raise NotFound("No such campaign.")
    roles = await roles_on(session, campaign, viewer)
    if not lifecycle.is_visible(campaign.status, roles):
        raise NotFound("No such campaign.")
    return campaign, roles


async def campaign_for(
    session: AsyncSession, ref: uuid.UUID | str, user: User, action: str
) -> tuple[Campaign, frozenset[Role]]:
    """The campaign `user` may take `action` on now, its row locked until the transaction ends.

    The lock is taken by a conditional UPDATE on the status the table allows, so a concurrent transition (a submit
    racing an edit) waits for this transaction and then finds the status it left behind.
    """
    campaign, roles = await visible_campaign(session, ref, user)
    lifecycle.check(campaign.status, action, roles)
    locked = await session.scalar(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == campaign.status)
        .values(updated_at=func.now())
        .returning(Campaign.id)
    )
    if locked is None:
        await session.refresh(campaign)
        lifecycle.check(campaign.status, action, roles)
        raise CampaignChanged("The campaign changed meanwhile; reload it and try again.")
    await session.refresh(campaign)
    return campaign, roles


async def move_campaign(
    session: AsyncSession,
    campaign: Campaign,
    action: str,
    roles: frozenset[Role],
    *,
    actor_id: uuid.UUID | None,
    note: str = "",
    note_language: str = "en",
    **values: object,
) -> str:
    """Take `action` on `campaign` by the table: one conditional UPDATE from the status it has, one timeline event.

    `values` are further columns set by the same UPDATE (SQL expressions allowed). Returns the new status; raises the
    table's error when the status or the roles do not allow it, including when another transaction moved it first.
    """
    from_status = campaign.status
    next_status = lifecycle.apply(from_status, action, roles)
    moved = await session.scalar(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == from_status)
        .values(status=next_status, **values)
        .returning(Campaign.id)
    )
    if moved is None:
        await session.refresh(campaign)
        lifecycle.check(campaign.status, action, roles)
        raise CampaignChanged("The campaign changed meanwhile; reload it and try again.")
    session.add(
        CampaignEvent(
            campaign_id=campaign.id,
            actor_id=actor_id,
            action=action,
            from_status=from_status,
            to_status=next_status,
            note=note,
            language=note_language,
        )
    )
    await session.flush()
    await session.refresh(campaign)
    return next_status
