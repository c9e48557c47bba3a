"""A maker's updates on a launched campaign: public, or for its backers only; every backer gets each one by mail."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy import update as update_rows
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns import lifecycle
from campaigns.access import visible_campaign
from campaigns.campaign_schemas import UpdateCreate, UpdatePatch
from campaigns.errors import NotFound
from campaigns.ids import parse_id
from campaigns.languages import Written, language_of, stored_versions, version_for
from campaigns.models import Campaign, CampaignUpdate, Pledge, User
from campaigns.notifications import notify
from campaigns.pagination import Cursor, page_after
from campaigns.pledges.lifecycle import COUNTED_PLEDGE_STATUSES
from campaigns.service import campaign_facts
from campaigns.story import render_story


async def backers_of(session: AsyncSession, campaign_id: uuid.UUID) -> list[User]:
    """Everyone with a pledge that counts on the campaign, once each."""
    rows = await session.scalars(
        select(User)
        .where(
            User.id.in_(
                select(Pledge.backer_id).where(
                    Pledge.campaign_id == campaign_id, Pledge.status.in_(COUNTED_PLEDGE_STATUSES)
                )
            )
        )
        .order_by(User.created_at, User.id)
    )
    return list(rows)


async def is_backer(session: AsyncSession, campaign_id: uuid.UUID, user: User | None) -> bool:
    if user is None:
        return False
    found = await session.scalar(
        select(Pledge.id)
        .where(
            Pledge.campaign_id == campaign_id,
            Pledge.backer_id == user.id,
            Pledge.status.in_(COUNTED_PLEDGE_STATUSES),
        )
        .limit(1)
    )
    return found is not None


async def post_update(
    session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, update: UpdateCreate, *, base_url: str
) -> CampaignUpdate:
    """A new update on a live (or later) campaign, mailed to every backer whatever its visibility."""
    # No row lock: every status that allows an update moves only to another that does, and a lock would hold up
    # pledging on the campaign while the mails are written.
    campaign, roles = await visible_campaign(session, campaign_ref, maker)
    lifecycle.check(campaign.status, "post_update", roles)
    posted = CampaignUpdate(
        campaign_id=campaign.id,
        author_id=maker.id,
        title=update.title,
        body=update.body,
        body_html=render_story(update.body),
        visibility=update.visibility,
        language=update.language or campaign.language,
        translations=stored_versions(update.model_dump()["translations"], story="body"),
    )
    session.add(posted)
    await session.flush()
    await session.refresh(posted)
    facts = campaign_facts(campaign, base_url) | {"update_id": str(posted.id), "visibility": posted.visibility}
    for backer in await backers_of(session, campaign.id):
        await notify(session, backer, "campaign_update", **(facts | update_in_language(campaign, posted, backer)))
    return posted


def update_in_language(campaign: Campaign, posted: CampaignUpdate, reader: User) -> dict[str, str]:
    """The update's texts as `reader` is mailed them: the maker's version in the reader's account language when there
    is one, else the original, with the language each is written in."""
    language = language_of(reader.locale)

    def version(field: str, original: str) -> Written:
        return version_for(language, field, original, posted.language, posted.translations)

    title = version("title", posted.title)
    campaign_title = version_for(language, "title", campaign.title, campaign.language, campaign.translations)
    return {
        "campaign_title": str(campaign_title),
        "update_title": str(title),
        "update_body": str(version("body", posted.body)),
        "update_body_html": str(version("body_html", posted.body_html)),
        "update_language": title.language,
    }


async def list_updates(
    session: AsyncSession, campaign_ref: uuid.UUID | str, viewer: User | None, *, limit: int = 50, cursor: str | None
) -> tuple[list[CampaignUpdate], str | None]:
    """Newest first: the public updates, and the backers-only ones too for backers, the maker and the space."""
    campaign, roles = await visible_campaign(session, campaign_ref, viewer)
    query = select(CampaignUpdate).where(CampaignUpdate.campaign_id == campaign.id)
    if not (roles & lifecycle.INSIDERS or await is_backer(session, campaign.id, viewer)):
        query = query.where(CampaignUpdate.visibility == "public")
    return await page_after(
        session, query, CampaignUpdate, limit=limit, cursor=Cursor.decode(cursor), newest_first=True
    )


async def _maker_of_updates(session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User) -> uuid.UUID:
    """The campaign's id, when `maker` may change its updates: whoever may post them."""
    campaign, roles = await visible_campaign(session, campaign_ref, maker)
    lifecycle.check(campaign.status, "post_update", roles)
    return campaign.id


async def edit_update(
    session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, update_id: uuid.UUID | str, changes: UpdatePatch
) -> CampaignUpdate:
    """The maker changes a posted update; it stays posted where it was, marked edited, and is not mailed again."""
    campaign_id = await _maker_of_updates(session, campaign_ref, maker)
    values: dict[str, Any] = changes.changes()
    if "body" in values:
        values["body_html"] = render_story(values["body"])
    edited = await session.scalar(
        update_rows(CampaignUpdate)
        .where(CampaignUpdate.id == _update_id(update_id), CampaignUpdate.campaign_id == campaign_id)
        .values(**values, edited_at=func.now())
        .returning(CampaignUpdate)
        .execution_options(populate_existing=True)
    )
    if edited is None:
        raise NotFound("No such update on this campaign.")
    return edited


async def delete_update(
    session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, update_id: uuid.UUID | str
) -> None:
    """The maker takes an update down: it leaves the campaign's page and its list of updates (mails sent stay sent)."""
    campaign_id = await _maker_of_updates(session, campaign_ref, maker)
    deleted = await session.scalar(
        delete(CampaignUpdate)
        .where(CampaignUpdate.id == _update_id(update_id), CampaignUpdate.campaign_id == campaign_id)
        .returning(CampaignUpdate.id)
    )
    if deleted is None:
        raise NotFound("No such update on this campaign.")


async def get_update(
    session: AsyncSession, campaign_ref: uuid.UUID | str, maker: User, update_id: uuid.UUID | str
) -> CampaignUpdate:
    """One update, for its campaign's maker to edit."""
    campaign_id = await _maker_of_updates(session, campaign_ref, maker)
    found = await session.scalar(
        select(CampaignUpdate).where(
            CampaignUpdate.id == _update_id(update_id), CampaignUpdate.campaign_id == campaign_id
        )
    )
    if found is None:
        raise NotFound("No such update on this campaign.")
    return found


def _update_id(update_id: uuid.UUID | str) -> uuid.UUID:
    ident = parse_id(update_id)
    if ident is None:
        raise NotFound("No such update on this campaign.")
    return ident
