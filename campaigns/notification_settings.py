"""Which mails an account wants (updates, comments, messages), and the addresses no mail may go to any more.

A setting is a column on the account (`notify_<kind>`); a bounce or a complaint suppresses the address itself, whoever
it belongs to now. Mail a person must get (receipts, money, account safety) ignores the settings but not suppression.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.errors import InvalidInput
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
