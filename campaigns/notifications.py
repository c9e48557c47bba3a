"""Telling people what happened: a use case records the message here, the worker renders and delivers it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.jobs import enqueue_job
from campaigns.models import Mail, User, new_id

DELIVER_MAIL = "mail.deliver"


async def notify(session: AsyncSession, user: User, kind: str, **facts: Any) -> Mail:
    """Queue the mail `kind` (a template under templates/mail/) for `user`, with JSON-able `facts` for the template.

    It is delivered after the transaction commits, in the user's language; a rollback drops it with everything else.
    """
    # The id is made here, so the row waits for the session's next flush (one INSERT for many mails).
    mail = Mail(id=new_id(), kind=kind, user_id=user.id, to_address=user.email, locale=user.locale, facts=facts)
    session.add(mail)
    enqueue_job(session, DELIVER_MAIL, mail.id)
    return mail
