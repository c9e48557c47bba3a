"""Signed-in browsers and API tokens: started, looked up, listed and ended, one by one or all at once."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import NotFound
from campaigns.ids import parse_id
from campaigns.models import ApiToken, User, UserSession

# A session nobody used for this long is over; each use (noted at most every LAST_USED_PRECISION) extends it.
SESSION_LIFETIME = timedelta(days=14)
LAST_USED_PRECISION = timedelta(minutes=5)
USER_AGENT_LENGTH = 300


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _agent(user_agent: str | None) -> str | None:
    return user_agent[:USER_AGENT_LENGTH] if user_agent else None


async def start_session(
    session: AsyncSession, user: User, *, address: str | None, user_agent: str | None
) -> tuple[str, uuid.UUID]:
    """A new signed-in session for `user`: the random key for the cookie (only its hash is kept) and the row's id."""
    key = secrets.token_urlsafe(32)
    row = UserSession(
        user_id=user.id,
        key_hash=key_digest(key),
        expires_at=datetime.now(UTC) + SESSION_LIFETIME,
        last_used_from=address,
        user_agent=_agent(user_agent),
    )
    session.add(row)
    await session.flush()
    return key, row.id


def _live_session() -> list[object]:
    return [UserSession.ended_at.is_(None), UserSession.expires_at > func.now()]


async def user_for_session(
    session: AsyncSession, key: str, *, address: str | None, user_agent: str | None
) -> tuple[User, uuid.UUID] | None:
    """The user of a live session and the session's id. The read says whether "last used" is stale; only then does
    one conditional UPDATE note the use and push the expiry back, so a busy session costs no write per request."""
    stale = UserSession.last_used_at < func.now() - LAST_USED_PRECISION
    row = (
        await session.execute(
            select(User, UserSession.id, stale)
            .join(UserSession, UserSession.user_id == User.id)
            .where(UserSession.key_hash == key_digest(key), *_live_session())  # type: ignore[arg-type]
        )
    ).first()
    if row is None:
        return None
    user, session_id, is_stale = row
    if is_stale:
        await session.execute(
            update(UserSession)
            .where(UserSession.id == session_id, stale)
            .values(
                last_used_at=func.now(),
                expires_at=func.now() + SESSION_LIFETIME,
                last_used_from=address,
                user_agent=_agent(user_agent),
            )
        )
    return user, session_id


async def end_session(session: AsyncSession, key: str) -> None:
    await session.execute(
        update(UserSession)
        .where(UserSession.key_hash == key_digest(key), UserSession.ended_at.is_(None))
        .values(ended_at=func.now())
    )


async def end_sessions(session: AsyncSession, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> int:
    """End every session of the user but `keep`; returns how many ended."""
    query = update(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
    if keep is not None:
        query = query.where(UserSession.id != keep)
    result = await session.execute(query.values(ended_at=func.now()))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def revoke_tokens(session: AsyncSession, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> int:
    """Revoke every API token of the user but `keep`; returns how many were revoked."""
    query = update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    if keep is not None:
        query = query.where(ApiToken.id != keep)
    result = await session.execute(query.values(revoked_at=func.now()))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def end_everything(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    keep_session: uuid.UUID | None = None,
    keep_token: uuid.UUID | None = None,
) -> None:
    """Log the user out everywhere (but the session or token in hand, when given)."""
    await end_sessions(session, user_id, keep=keep_session)
    await revoke_tokens(session, user_id, keep=keep_token)


async def end_session_of(session: AsyncSession, user: User, session_id: uuid.UUID | str) -> None:
    ident = parse_id(session_id)
    ended = await session.scalar(
        update(UserSession)
        .where(UserSession.id == ident, UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=func.now())
        .returning(UserSession.id)
    )
    if ident is None or ended is None:
        raise NotFound("No such active session of yours.")


async def revoke_token_of(session: AsyncSession, user: User, token_id: uuid.UUID | str) -> None:
    ident = parse_id(token_id)
    revoked = await session.scalar(
        update(ApiToken)
        .where(ApiToken.id == ident, ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(ApiToken.id)
    )
    if ident is None or revoked is None:
        raise NotFound("No such active token of yours.")


async def active_sessions(session: AsyncSession, user: User) -> list[UserSession]:
    rows = await session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user.id, *_live_session())  # type: ignore[arg-type]
        .order_by(UserSession.last_used_at.desc())
        .limit(200)
    )
    return list(rows)


async def active_tokens(session: AsyncSession, user: User) -> list[ApiToken]:
    rows = await session.scalars(
        select(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None), ApiToken.expires_at > func.now())
        .order_by(ApiToken.created_at.desc())
        .limit(200)
    )
    return list(rows)


async def token_id_of(session: AsyncSession, token: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await session.scalar(select(ApiToken.id).where(ApiToken.token_hash == key_digest(token)))
    return found
