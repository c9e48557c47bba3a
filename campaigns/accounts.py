"""People: sign-up, passwords, API tokens and roles."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.audit import record_audit
from campaigns.errors import Conflict, KindlingError, NotFound
from campaigns.models import ApiToken, SpaceOperator, User
from campaigns.notifications import notify

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the email is unknown, so both failures take the same time.
_DUMMY_HASH = _hasher.hash("kindling-no-such-user")


class EmailTaken(Conflict):
    type = "email-taken"
    title = "That email already has an account"


class WrongCredentials(KindlingError):
    status = 401
    type = "wrong-credentials"
    title = "Wrong email or password"


@dataclass(frozen=True)
class Roles:
    admin: bool
    operator_of: list[uuid.UUID]


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def register_user(session: AsyncSession, *, email: str, password: str, name: str, locale: str = "en") -> User:
    row = await session.execute(
        insert(User)
        .values(email=normalise_email(email), name=name, password_hash=_hasher.hash(password), locale=locale)
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User.id)
    )
    user_id = row.scalar_one_or_none()
    if user_id is None:
        raise EmailTaken("An account with this email exists already; log in instead.")
    user = await session.get_one(User, user_id)
    await notify(session, user, "welcome", name=user.name)
    return user


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User:
    user = await session.scalar(select(User).where(User.email == normalise_email(email)))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise WrongCredentials("The email or the password is wrong.") from None
    if user is None:
        raise WrongCredentials("The email or the password is wrong.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


async def issue_token(session: AsyncSession, user: User) -> str:
    token = "kdl_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token)))
    await session.flush()
    return token


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    return await session.scalar(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    )


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
        user = await register_user(session, email=email, password=password, name=email.split("@")[0])
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
