"""Single-use links mailed to a user: confirm the address, reset a forgotten password, confirm a new address.

A link's token is random; only its SHA-256 is kept, and using it is one conditional UPDATE, so a link works once
however many tabs follow it at the same moment. The mail carries the token as its SECRET_FACT, which the outbox
forgets once the mail is sent.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import Conflict, InvalidInput, NotFound
from campaigns.models import AccountLink, User
from campaigns.notifications import SECRET_FACT, notify, notify_at
from campaigns.passwords import hash_password, password_matches
from campaigns.sessions import end_everything

LIFETIMES = {
    "reset_password": timedelta(hours=1),
    "verify_email": timedelta(days=3),
    "change_email": timedelta(days=1),
}


class LinkInvalid(NotFound):
    type = "link-invalid"
    title = "This link is unknown, used already or expired"


class AlreadyVerified(Conflict):
    type = "already-verified"
    title = "The email address is confirmed already"


class EmailTaken(Conflict):
    type = "email-taken"
    title = "That email already has an account"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _normalise(email: str) -> str:
    return email.strip().lower()


async def _new_link(session: AsyncSession, user: User, purpose: str, *, new_email: str | None = None) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        AccountLink(
            user_id=user.id,
            purpose=purpose,
            token_hash=_digest(token),
            new_email=new_email,
            expires_at=func.now() + LIFETIMES[purpose],
        )
    )
    return token


async def _use_link(session: AsyncSession, token: str, purpose: str) -> AccountLink:
    link: AccountLink | None = await session.scalar(
        update(AccountLink)
        .where(
            AccountLink.token_hash == _digest(token),
            AccountLink.purpose == purpose,
            AccountLink.used_at.is_(None),
            AccountLink.expires_at > func.now(),
        )
        .values(used_at=func.now())
        .returning(AccountLink)
    )
    if link is None:
        raise LinkInvalid("This link is unknown, was used already or has expired; ask for a new one.")
    return link


async def usable_link(session: AsyncSession, token: str, purpose: str) -> AccountLink | None:
    """The link, if following it would work now (a page shows its form only then); it stays unused."""
    link: AccountLink | None = await session.scalar(
        select(AccountLink).where(
            AccountLink.token_hash == _digest(token),
            AccountLink.purpose == purpose,
            AccountLink.used_at.is_(None),
            AccountLink.expires_at > func.now(),
        )
    )
    return link


async def link_is_usable(session: AsyncSession, token: str, purpose: str) -> bool:
    return await usable_link(session, token, purpose) is not None


async def _retire_links(session: AsyncSession, user_id: uuid.UUID, purpose: str) -> None:
    await session.execute(
        update(AccountLink)
        .where(AccountLink.user_id == user_id, AccountLink.purpose == purpose, AccountLink.used_at.is_(None))
        .values(used_at=func.now())
    )


# Confirming the address


async def mail_verification_link(session: AsyncSession, user: User) -> None:
    token = await _new_link(session, user, "verify_email")
    await notify(session, user, "verify_email", name=user.name, **{SECRET_FACT: token})


async def send_verification_again(session: AsyncSession, user: User) -> None:
    if user.email_verified_at is not None:
        raise AlreadyVerified(f"{user.email} is confirmed already; there is nothing to send.")
    await mail_verification_link(session, user)


async def verify_email(session: AsyncSession, token: str) -> User:
    link = await _use_link(session, token, "verify_email")
    user = await session.get_one(User, link.user_id, with_for_update=True)
    if user.email_verified_at is None:
        user.email_verified_at = datetime.now(UTC)
    await session.flush()
    return user


# A forgotten password


async def request_password_reset(session: AsyncSession, email: str) -> None:
    """Mail a reset link if an account has this email. The caller learns nothing either way."""
    user = await session.scalar(select(User).where(User.email == _normalise(email)))
    if user is None:
        return
    token = await _new_link(session, user, "reset_password")
    await notify(session, user, "password_reset", name=user.name, **{SECRET_FACT: token})


async def reset_password(session: AsyncSession, token: str, password: str) -> User:
    """Set a new password from a reset link, and end every session and API token of the account. Following the link
    proves the address, so it counts as confirmed too."""
    link = await _use_link(session, token, "reset_password")
    user = await session.get_one(User, link.user_id, with_for_update=True)
    user.password_hash = hash_password(password)
    if user.email_verified_at is None:
        user.email_verified_at = datetime.now(UTC)
    await _retire_links(session, user.id, "reset_password")
    await end_everything(session, user.id)
    await session.flush()
    return user


async def change_password(
    session: AsyncSession,
    user: User,
    *,
    current_password: str,
    new_password: str,
    keep_session: uuid.UUID | None = None,
    keep_token: uuid.UUID | None = None,
) -> None:
    """A new password, given the current one; every other session and token of the account ends."""
    if not password_matches(user, current_password):
        raise InvalidInput("current_password", "The current password is wrong.")
    user.password_hash = hash_password(new_password)
    await _retire_links(session, user.id, "reset_password")
    await end_everything(session, user.id, keep_session=keep_session, keep_token=keep_token)
    await session.flush()


# A new address


async def request_email_change(session: AsyncSession, user: User, *, new_email: str, password: str) -> None:
    """Mail a confirmation link to the new address; nothing changes until it is followed."""
    if not password_matches(user, password):
        raise InvalidInput("password", "The password is wrong.")
    new_email = _normalise(new_email)
    if new_email == user.email:
        raise InvalidInput("email", "This is your email address already.")
    if await session.scalar(select(exists().where(User.email == new_email))):
        raise EmailTaken("An account with this email exists already.")
    token = await _new_link(session, user, "change_email", new_email=new_email)
    await notify_at(
        session, user, new_email, "email_change", name=user.name, new_email=new_email, **{SECRET_FACT: token}
    )


async def confirm_email_change(session: AsyncSession, token: str) -> User:
    """Move the account to the address the link was mailed to (confirmed by following it) and tell the old one."""
    link = await _use_link(session, token, "change_email")
    assert link.new_email is not None  # the table's check says so
    user = await session.get_one(User, link.user_id, with_for_update=True)
    old_email = user.email
    try:
        async with session.begin_nested():
            user.email = link.new_email
            user.email_verified_at = datetime.now(UTC)
            await session.flush()
    except IntegrityError:
        raise EmailTaken("Another account took this email meanwhile.") from None
    await _retire_links(session, user.id, "change_email")
    await notify_at(
        session, user, old_email, "email_changed", name=user.name, old_email=old_email, new_email=user.email
    )
    return user
