"""Makerspaces, which sponsor and vet campaigns, and the people who operate them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.accounts import require_verified_email, user_by_email
from campaigns.audit import record_audit
from campaigns.errors import Conflict, NotAllowed, NotFound
from campaigns.ids import parse_id
from campaigns.models import Campaign, Space, SpaceOperator, User
from campaigns.pagination import Cursor, page_after
from campaigns.two_factor import require_two_factor


class SlugTaken(Conflict):
    type = "slug-taken"
    title = "That slug is taken"


def require_acting_admin(user: User) -> None:
    """A platform admin, with two-factor on: every admin action starts here."""
    if not user.is_admin:
        raise NotAllowed("Only a platform admin may do this.")
    require_two_factor(user)


async def create_space(
    session: AsyncSession,
    admin: User,
    *,
    name: str,
    slug: str,
    city: str,
    country: str,
    sponsor_fee_bps: int,
    description: str,
    province: str = "",
    client_address: str | None,
) -> Space:
    require_acting_admin(admin)
    row = await session.execute(
        insert(Space)
        .values(
            name=name,
            slug=slug,
            city=city.strip(),
            province=province.strip(),
            country=country,
            sponsor_fee_bps=sponsor_fee_bps,
            description=description,
        )
        .on_conflict_do_nothing(index_elements=[Space.slug])
        .returning(Space.id)
    )
    space_id = row.scalar_one_or_none()
    if space_id is None:
        raise SlugTaken(f"Another space already uses the slug {slug!r}.")
    await record_audit(
        session,
        admin.id,
        "space.create",
        "space",
        space_id,
        space_id=space_id,
        client_address=client_address,
        details={"name": name, "slug": slug, "sponsor_fee_bps": sponsor_fee_bps},
    )
    return await session.get_one(Space, space_id)


async def update_space(
    session: AsyncSession,
    admin: User,
    space_id: uuid.UUID | str,
    *,
    name: str,
    city: str,
    country: str,
    sponsor_fee_bps: int,
    description: str,
    province: str = "",
    client_address: str | None,
) -> Space:
    """An admin edits a space's name, place, fee and description (its slug, in every link, stays)."""
    require_acting_admin(admin)
    space = await get_space(session, space_id)
    values = {
        "name": name,
        "city": city.strip(),
        "province": province.strip(),
        "country": country,
        "sponsor_fee_bps": sponsor_fee_bps,
    }
    await session.execute(update(Space).where(Space.id == space.id).values(**values, description=description))
    await record_audit(
        session,
        admin.id,
        "space.update",
        "space",
        space.id,
        space_id=space.id,
        client_address=client_address,
        details=values,
    )
    await session.refresh(space)
    return space


def campaign_sponsor_fee_bps(campaign: Campaign, space: Space) -> int:
    """The fee the campaign launched with, whatever its space has set since; one not launched yet would take the
    space's fee of today."""
    return campaign.sponsor_fee_bps if campaign.sponsor_fee_bps is not None else space.sponsor_fee_bps


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


async def add_operator(
    session: AsyncSession, admin: User, space: Space, email: str, *, client_address: str | None
) -> User:
    require_acting_admin(admin)
    user = await user_by_email(session, email)
    require_verified_email(user, "being made an operator of a space")
    added = await session.scalar(
        insert(SpaceOperator)
        .values(space_id=space.id, user_id=user.id)
        .on_conflict_do_nothing()
        .returning(SpaceOperator.user_id)
    )
    if added is not None:
        await record_audit(
            session,
            admin.id,
            "space.operator_add",
            "user",
            user.id,
            space_id=space.id,
            client_address=client_address,
            details={"email": user.email},
        )
    return user


async def remove_operator(
    session: AsyncSession, admin: User, space: Space, user_id: uuid.UUID | str, *, client_address: str | None
) -> None:
    """The user no longer operates the space; 404 when they did not."""
    require_acting_admin(admin)
    ident = parse_id(user_id)
    removed = None
    if ident is not None:
        removed = await session.scalar(
            delete(SpaceOperator)
            .where(SpaceOperator.space_id == space.id, SpaceOperator.user_id == ident)
            .returning(SpaceOperator.user_id)
        )
    if removed is None:
        raise NotFound("That user does not operate this space.")
    await record_audit(
        session, admin.id, "space.operator_remove", "user", removed, space_id=space.id, client_address=client_address
    )


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
