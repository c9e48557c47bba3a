"""What a platform admin does to people: find them and make them admins. Spaces and their operators are in spaces.py."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.audit import record_audit
from campaigns.errors import NotFound
from campaigns.ids import parse_id
from campaigns.models import User
from campaigns.spaces import require_acting_admin

USERS_FOUND_AT_MOST = 50


async def find_users(session: AsyncSession, admin: User, query: str) -> list[User]:
    """Users whose email or name contains `query` (any case), newest first, at most 50."""
    require_acting_admin(admin)
    pattern = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await session.scalars(
        select(User)
        .where(or_(User.email.ilike(pattern, escape="\\"), User.name.ilike(pattern, escape="\\")))
        .order_by(User.created_at.desc(), User.id)
        .limit(USERS_FOUND_AT_MOST)
    )
    return list(rows)


async def get_user(session: AsyncSession, user_id: uuid.UUID | str) -> User:
    ident = parse_id(user_id)
    user = await session.get(User, ident) if ident else None
    if user is None:
        raise NotFound("No such user.")
    return user


async def promote_to_admin(
    session: AsyncSession, admin: User, user_id: uuid.UUID | str, *, client_address: str | None
) -> User:
    """Make the user a platform admin (they must then set up two-factor before acting as one); audited once."""
    require_acting_admin(admin)
    user = await get_user(session, user_id)
    promoted = await session.scalar(
        update(User).where(User.id == user.id, User.is_admin.is_(False)).values(is_admin=True).returning(User.id)
    )
    if promoted is not None:
        await record_audit(
            session,
            admin.id,
            "user.promote",
            "user",
            user.id,
            space_id=None,
            client_address=client_address,
            details={"email": user.email},
        )
    await session.refresh(user)
    return user
