"""A maker's public face: their name and their public campaigns; nothing else about their account."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.access import visible_to
from campaigns.errors import NotFound
from campaigns.ids import parse_id
from campaigns.models import Campaign, User


async def public_maker(session: AsyncSession, maker_ref: uuid.UUID | str) -> User:
    """The user by id, if they made at least one public campaign; anyone else is no one's business (404)."""
    ident = parse_id(maker_ref)
    maker = (
        await session.scalar(
            select(User).where(User.id == ident, exists().where(Campaign.maker_id == User.id, visible_to(None)))
        )
        if ident
        else None
    )
    if maker is None:
        raise NotFound("No such maker: only makers of a public campaign have a public page.")
    return maker
