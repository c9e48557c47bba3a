"""Mail to many backers at once: the address survey and its reminder, the shipping notice.

The same outbox row as `campaigns.notifications.notify` writes, one per backer, but inserted in bulk: a campaign of
100,000 backers is a few statements, not 100,000 flushes. Each mail is delivered after the commit, in the reader's
language.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.jobs import enqueue_job
from campaigns.models import Mail, new_id
from campaigns.notifications import DELIVER_MAIL
from campaigns.pledges.service import pledge_path


@dataclass(frozen=True)
class BackerMail:
    user_id: uuid.UUID
    email: str
    locale: str
    facts: dict[str, Any]


def mail_about_pledge(row: Any, facts: Mapping[str, Any]) -> BackerMail:
    """The mail to a pledge's backer: `row` holds the pledge's `id` and the backer's `user_id`, `email`, `locale` and
    `name`; `facts` the rest. The one place the facts every such mail shares are put together."""
    return BackerMail(
        user_id=row.user_id,
        email=row.email,
        locale=row.locale,
        facts={**facts, "name": row.name, "pledge_id": str(row.id), "path": pledge_path(row.id)},
    )


async def mail_backers(session: AsyncSession, kind: str, mails: Iterable[BackerMail]) -> int:
    """Queue the mail `kind` (templates/mail/<kind>.*) for each backer with its own facts; returns how many."""
    rows = [
        {
            "id": new_id(),
            "kind": kind,
            "user_id": m.user_id,
            "to_address": m.email,
            "locale": m.locale,
            "facts": m.facts,
        }
        for m in mails
    ]
    if rows:
        await session.execute(insert(Mail), rows)
    for row in rows:
        enqueue_job(session, DELIVER_MAIL, row["id"])
    return len(rows)
