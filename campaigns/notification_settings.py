"""Which mails an account wants (updates, comments, messages), and the addresses no mail may go to any more.

A setting is a column on the account (`notify_<kind>`); a bounce or a complaint suppresses the address itself, whoever
it belongs to now. Mail a person must get (receipts, money, account safety) ignores the settings but not suppression.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import InvalidInput, NotFound
from campaigns.ids import parse_id
from campaigns.models import MailSuppression, User

# The kinds of mail a person may turn off, each a users.notify_<kind> column.
NOTIFICATION_KINDS = ("updates", "comments", "messages")
SUPPRESSION_REASONS = ("bounce", "complaint")
ADDRESS_LIMIT = 320


def wants(user: User, kind: str) -> bool:
    """Whether `user` still wants mail of `kind` (one of NOTIFICATION_KINDS)."""
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}; one of {NOTIFICATION_KINDS}")
    return bool(getattr(user, f"notify_{kind}"))


def notification_settings(user: User) -> dict[str, bool]:
    return {kind: wants(user, kind) for kind in NOTIFICATION_KINDS}


async def set_notification_settings(session: AsyncSession, user: User, changes: Mapping[str, bool]) -> dict[str, bool]:
    """Turn the named kinds on or off (the others stay as they are); the settings as they now are."""
    for kind, value in changes.items():
        if kind not in NOTIFICATION_KINDS:
            raise InvalidInput(kind, f"is not one of {', '.join(NOTIFICATION_KINDS)}")
        if not isinstance(value, bool):
            raise InvalidInput(kind, "must be true or false")
    for kind, value in changes.items():
        setattr(user, f"notify_{kind}", value)
    await session.flush()
    return notification_settings(user)


async def suppress_address(session: AsyncSession, address: str, reason: str, *, detail: str | None = None) -> bool:
    """No more mail to `address` (it bounced or its owner complained); True when it was not suppressed before."""
    if reason not in SUPPRESSION_REASONS:
        raise InvalidInput("reason", f"must be one of {', '.join(SUPPRESSION_REASONS)}")
    normal = address.strip().lower()
    if not normal or "@" not in normal or len(normal) > ADDRESS_LIMIT:
        raise InvalidInput("address", "must be an email address")
    added = await session.scalar(
        insert(MailSuppression)
        .values(address=normal, reason=reason, detail=detail)
        .on_conflict_do_nothing(index_elements=[MailSuppression.address])
        .returning(MailSuppression.address)
    )
    return added is not None


async def is_suppressed(session: AsyncSession, address: str) -> bool:
    found = await session.scalar(select(MailSuppression.address).where(MailSuppression.address == address.lower()))
    return found is not None


# One-click unsubscribe (RFC 8058): the link in a mail's List-Unsubscribe header carries a token that names the account
# and the kind of mail, signed with the site's secret, so the POST works without logging in and cannot be forged.
# Mail of these kinds carries the header; the value is the setting the link turns off.
UNSUBSCRIBE_KINDS = {"campaign_update": "updates"}
TOKEN_LIMIT = 200


def _signature(secret_key: str, user_id: uuid.UUID, kind: str) -> str:
    digest = hmac.new(secret_key.encode(), f"unsubscribe:{user_id}:{kind}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def unsubscribe_token(secret_key: str, user_id: uuid.UUID, kind: str) -> str:
    """The token of the link that turns `kind` (one of NOTIFICATION_KINDS) off for the account."""
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    return f"{user_id}.{kind}.{_signature(secret_key, user_id, kind)}"


def read_unsubscribe_token(secret_key: str, token: str) -> tuple[uuid.UUID, str] | None:
    """The account and kind a token of `unsubscribe_token` names, or None when it is not one (or was tampered with)."""
    if len(token) > TOKEN_LIMIT:
        return None
    user_ref, _dot, rest = token.partition(".")
    kind, _dot, signature = rest.partition(".")
    user_id = parse_id(user_ref)
    if user_id is None or kind not in NOTIFICATION_KINDS:
        return None
    if not hmac.compare_digest(signature.encode(), _signature(secret_key, user_id, kind).encode()):
        return None
    return user_id, kind


async def unsubscribe(session: AsyncSession, secret_key: str, token: str) -> str:
    """Turn off the kind of mail the token names for its account; the kind. NotFound for a token that is not one.
    Doing it twice is doing it once."""
    read = read_unsubscribe_token(secret_key, token)
    if read is None:
        raise NotFound("This unsubscribe link is not one Kindling sent.")
    user_id, kind = read
    found = await session.scalar(
        update(User).where(User.id == user_id).values({f"notify_{kind}": False}).returning(User.id)
    )
    if found is None:
        raise NotFound("This unsubscribe link is not one Kindling sent.")
    return kind
