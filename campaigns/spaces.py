"""Makerspaces, which sponsor and vet campaigns, and the people who operate them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.accounts import require_verified_email, user_by_email
from campaigns.errors import Conflict, NotFound
from campaigns.ids import parse_id
from campaigns.models import Space, SpaceOperator, User
from campaigns.pagination import Cursor, page_after


class SlugTaken(Conflict):
    type = "slug-taken"
    title = "That slug is taken"


async def create_space(
    session: AsyncSession, *, name: str, slug: str, city: str, country: str, sponsor_fee_bps: int, description: str
) -> Space:
    row = await session.execute(
        insert(Space)
        .values(
            name=name, slug=slug, city=city, country=country, sponsor_fee_bps=sponsor_fee_bps, description=description
        )
        .on_conflict_do_nothing(index_elements=[Space.slug])
        .returning(Space.id)
    )
    space_id = row.scalar_one_or_none()
    if space_id is None:
        raise SlugTaken(f"Another space already uses the slug {slug!r}.")
    return await session.get_one(Space, space_id)


async def get_space(session: AsyncSession, space_id: uuid.UUID | str) -> Space:
    ident = parse_id(space_id)
    space = await session.get(Space, ident) if ident else None
    if space is None:
        raise NotFound("No such space.")
    return space


async def get_space_by_slug(session: AsyncSession, slug: str) -> Space:
    space = await session.scalar(select(Space).where(Space.slug == slug))
    if space is None:
        raise NotFound("No such space.")
    return space


async def add_operator(session: AsyncSession, space: Space, email: str) -> User:
    user = await user_by_email(session, email)
    require_verified_email(user, "being made an operator of a space")
    await session.execute(insert(SpaceOperator).values(space_id=space.id, user_id=user.id).on_conflict_do_nothing())
    return user


async def operators_of(session: AsyncSession, space: Space) -> Sequence[User]:
    result = await session.scalars(
        select(User).join(SpaceOperator, SpaceOperator.user_id == User.id).where(SpaceOperator.space_id == space.id)
    )
    return result.all()


async def operates(session: AsyncSession, user: User | None, space_id: uuid.UUID) -> bool:
    if user is None:
        return False
    found = await session.scalar(
        select(SpaceOperator.user_id).where(SpaceOperator.space_id == space_id, SpaceOperator.user_id == user.id)
    )
    return found is not None


async def list_spaces(session: AsyncSession, *, limit: int, cursor: str | None) -> tuple[list[Space], str | None]:
    return await page_after(session, select(Space), Space, limit=limit, cursor=Cursor.decode(cursor))
