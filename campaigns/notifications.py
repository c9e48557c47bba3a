"""Telling people what happened: a use case records the message here, the worker renders and delivers it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.jobs import enqueue_job
from campaigns.models import Mail, User, new_id

DELIVER_MAIL = "mail.deliver"
# The fact holding a mailed link's token: the outbox keeps it only until the mail is sent, then forgets it.
SECRET_FACT = "secret_token"


async def notify(session: AsyncSession, user: User, kind: str, **facts: Any) -> Mail:
    """Queue the mail `kind` (a template under templates/mail/) for `user`, with JSON-able `facts` for the template.

    It is delivered after the transaction commits, in the user's language; a rollback drops it with everything else.
    """
    return await notify_at(session, user, user.email, kind, **facts)


async def notify_at(session: AsyncSession, user: User, address: str, kind: str, **facts: Any) -> Mail:
    """`notify`, sent to `address` rather than the user's email (a new address to confirm, the old one to tell)."""
    # The id is made here, so the row waits for the session's next flush (one INSERT for many mails).
    mail = Mail(id=new_id(), kind=kind, user_id=user.id, to_address=address, locale=user.locale, facts=facts)
    session.add(mail)
    enqueue_job(session, DELIVER_MAIL, mail.id)
    return mail
