"""People: sign-up, passwords, API tokens and roles."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.account_links import EmailTaken as EmailTaken
from campaigns.account_links import mail_verification_link
from campaigns.audit import record_audit
from campaigns.errors import Conflict, KindlingError, NotFound
from campaigns.models import ApiToken, SpaceOperator, User
from campaigns.notifications import notify
from campaigns.passwords import hash_password, password_matches
from campaigns.preferences import DEFAULT_LANGUAGE, DEFAULT_TIME_ZONE
from campaigns.sessions import LAST_USED_PRECISION

DEFAULT_TOKEN_DAYS = 90


class WrongCredentials(KindlingError):
    status = 401
    type = "wrong-credentials"
    title = "Wrong email or password"


class EmailUnverified(Conflict):
    type = "email-unverified"
    title = "The email address is not confirmed yet"


def require_verified_email(user: User, doing: str) -> None:
    """Steps that vouch for someone (a campaign for review, an operator, a payout) wait for a confirmed address."""
    if user.email_verified_at is None:
        raise EmailUnverified(
            f"{user.email} must be confirmed before {doing}: follow the link in the mail we sent, or ask for a "
            "new one (POST /api/v1/email-verifications, or the button on the account page)."
        )


@dataclass(frozen=True)
class Roles:
    admin: bool
    operator_of: list[uuid.UUID]


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def register_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    name: str,
    locale: str = DEFAULT_LANGUAGE,
    time_zone: str = DEFAULT_TIME_ZONE,
    verified: bool = False,
) -> User:
    """A new account; unless `verified` (an admin made from the command line, the demo), it is mailed a link that
    confirms its address. `locale` and `time_zone` must be valid (campaigns/preferences.py)."""
    row = await session.execute(
        insert(User)
        .values(
            email=normalise_email(email),
            name=name,
            password_hash=hash_password(password),
            locale=locale,
            time_zone=time_zone,
            email_verified_at=func.now() if verified else None,
        )
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User.id)
    )
    user_id = row.scalar_one_or_none()
    if user_id is None:
        raise EmailTaken("An account with this email exists already; log in instead.")
    user = await session.get_one(User, user_id)
    await notify(session, user, "welcome", name=user.name)
    if not verified:
        await mail_verification_link(session, user)
    return user


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User:
    user = await session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None or not password_matches(user, password):
        raise WrongCredentials("The email or the password is wrong.")
    return user


async def issue_token(
    session: AsyncSession,
    user: User,
    *,
    days: int = DEFAULT_TOKEN_DAYS,
    name: str | None = None,
    address: str | None = None,
    user_agent: str | None = None,
) -> str:
    """A bearer token for `user`, valid `days` days; only its hash is kept."""
    token = "kdl_" + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            token_hash=hash_token(token),
            name=name,
            expires_at=datetime.now(UTC) + timedelta(days=days),
            last_used_from=address,
            user_agent=user_agent[:300] if user_agent else None,
        )
    )
    await session.flush()
    return token


async def user_for_token(
    session: AsyncSession, token: str, *, address: str | None = None, user_agent: str | None = None
) -> User | None:
    """The holder of a live (unrevoked, unexpired) token. Notes when and from where it was used, at most once per
    LAST_USED_PRECISION: the read says whether the note is stale, and only then does one conditional UPDATE run."""
    stale = ApiToken.last_used_at.is_(None) | (ApiToken.last_used_at < func.now() - LAST_USED_PRECISION)
    row = (
        await session.execute(
            select(User, ApiToken.id, stale)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(
                ApiToken.token_hash == hash_token(token),
                ApiToken.revoked_at.is_(None),
                ApiToken.expires_at > func.now(),
            )
        )
    ).first()
    if row is None:
        return None
    user, token_id, is_stale = row
    if is_stale:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id, stale)
            .values(
                last_used_at=func.now(),
                last_used_from=address,
                user_agent=user_agent[:300] if user_agent else None,
            )
        )
    return user


async def revoke_token(session: AsyncSession, token: str) -> None:
    await session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def roles_of(session: AsyncSession, user: User) -> Roles:
    spaces = await session.scalars(
        select(SpaceOperator.space_id).where(SpaceOperator.user_id == user.id).order_by(SpaceOperator.created_at)
    )
    return Roles(admin=user.is_admin, operator_of=list(spaces))


async def create_admin(session: AsyncSession, *, email: str, password: str) -> tuple[User, bool]:
    """Create a platform admin, or promote the existing account with that email. Returns (user, created).

    From the command line: the audit row names no actor and no address."""
    user = await session.scalar(select(User).where(User.email == normalise_email(email)).with_for_update())
    created = user is None
    if user is None:
        user = await register_user(session, email=email, password=password, name=email.split("@")[0], verified=True)
    if user.email_verified_at is None:
        user.email_verified_at = datetime.now(UTC)
    if not user.is_admin:
        user.is_admin = True
        await record_audit(
            session,
            None,
            "user.promote",
            "user",
            user.id,
            space_id=None,
            client_address=None,
            details={"email": user.email, "via": "command line"},
        )
    return user, created


async def user_by_email(session: AsyncSession, email: str) -> User:
    user = await session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"No user has the email {email!r}.")
    return user
