"""The one mailer: renders an outbox row in its recipient's language, sends it by SMTP or keeps it for /dev/mail."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
from jinja2 import Environment
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.ids import parse_id
from campaigns.jobs import enqueue_job
from campaigns.languages import VERSIONS_FACT
from campaigns.models import Mail, User
from campaigns.notifications import DELIVER_MAIL, SECRET_FACT
from campaigns.preferences import DEFAULT_TIME_ZONE
from service.i18n import gettext as _
from service.i18n import use_locale, use_time_zone
from service.settings import Settings
from service.sweep import sweep_step
from service.templating import create_templates

log = logging.getLogger("kindling.mail")

MAX_ATTEMPTS = 10
# A mail still unsent this long after it was written (doubling with each failed attempt) lost its message or failed:
# the sweep sends it again. Well above the time a healthy worker takes, so the sweep rarely doubles a live job.
RETRY_AFTER_SECONDS = 10
SMTP_TIMEOUT = 30.0
ERROR_LIMIT = 2000


@dataclass(frozen=True)
class Reader:
    """Whom a mail speaks to: their display name (None: a greeting without one) and the zone its times are shown in."""

    name: str | None = None
    time_zone: str = DEFAULT_TIME_ZONE


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


@cache
def mail_templates(*, dev: bool) -> Environment:
    return create_templates(dev=dev)


def render_mail(templates: Environment, mail: Mail, *, base_url: str, reader: Reader | None = None) -> RenderedMail:
    """templates/mail/<kind>.subject.txt, .txt and .html, in the mail's language, with its facts, greeting the
    reader by name and showing times on their clock."""
    reader = reader or Reader()
    context: dict[str, Any] = {**mail.facts, "base_url": base_url, "to_address": mail.to_address}
    # The maker's texts in the reader's language, where they wrote a version in it (campaigns.languages.mail_versions).
    context.update((mail.facts.get(VERSIONS_FACT) or {}).get(mail.locale) or {})
    with use_locale(mail.locale), use_time_zone(reader.time_zone):
        context["greeting"] = _("Hello %(name)s,") % {"name": reader.name} if reader.name else _("Hello,")
        subject = templates.get_template(f"mail/{mail.kind}.subject.txt").render(context)
        body = templates.get_template(f"mail/{mail.kind}.txt").render(context)
        html = templates.get_template(f"mail/{mail.kind}.html").render(context)
    return RenderedMail(subject=" ".join(subject.split()), text=body.strip() + "\n", html=html)


def build_message(mail: Mail, rendered: RenderedMail, *, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to_address
    message["Subject"] = rendered.subject
    domain = parseaddr(sender)[1].rpartition("@")[2] or "kindling.localhost"
    # The same id on every attempt lets a receiving server drop a copy we had to send twice.
    message["Message-ID"] = f"<{mail.id}@{domain}>"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


async def send_over_smtp(message: EmailMessage, smtp_url: str) -> None:
    parts = urlsplit(smtp_url)
    secure = parts.scheme == "smtps"
    await aiosmtplib.send(
        message,
        hostname=parts.hostname or "localhost",
        port=parts.port or (465 if secure else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=secure,
        timeout=SMTP_TIMEOUT,
    )


async def deliver_mail(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, mail_id: uuid.UUID | str
) -> bool:
    """Render and send one outbox mail; True when this call sent it. Safe to call any number of times, concurrently.

    The conditional UPDATE claims the row (a concurrent call waits on its lock, then finds it sent); the claim, the
    rendered text and the send commit together, so a failed send leaves the mail unsent and counts the attempt.
    """
    ident = parse_id(mail_id)
    if ident is None:
        log.warning("mail.deliver: %r is not a mail id", mail_id)
        return False
    try:
        async with sessions.begin() as session:
            mail = await _claim(session, ident)
            if mail is None:
                return False
            reader = await _reader_of(session, mail)
            rendered = render_mail(mail_templates(dev=settings.dev), mail, base_url=settings.base_url, reader=reader)
            kept = rendered
            secret = mail.facts.get(SECRET_FACT)
            if settings.smtp_url is not None and isinstance(secret, str):
                # A mailed link's token lives only in the recipient's mailbox; without SMTP, /dev/mail is the mailbox.
                parts = (rendered.subject, rendered.text, rendered.html)
                kept = RenderedMail(*(part.replace(secret, "…") for part in parts))
                mail.facts = {name: value for name, value in mail.facts.items() if name != SECRET_FACT}
            mail.subject, mail.text_body, mail.html_body = kept.subject, kept.text, kept.html
            await session.flush()
            if settings.smtp_url is None:
                log.info("mail %s (%s) to %s kept for /dev/mail", mail.id, mail.kind, mail.to_address)
            else:
                await send_over_smtp(build_message(mail, rendered, sender=settings.mail_from), settings.smtp_url)
                log.info("mail %s (%s) sent to %s", mail.id, mail.kind, mail.to_address)
    except Exception as exc:
        log.warning("mail %s not delivered: %s", ident, exc)
        await _record_failure(sessions, ident, f"{type(exc).__name__}: {exc}")
        return False
    return True


async def _claim(session: AsyncSession, mail_id: uuid.UUID) -> Mail | None:
    claimed = await session.scalar(
        update(Mail)
        .where(Mail.id == mail_id, Mail.sent_at.is_(None), Mail.attempts < MAX_ATTEMPTS)
        .values(sent_at=func.now(), attempts=Mail.attempts + 1)
        .returning(Mail)
        .execution_options(populate_existing=True)
    )
    return claimed


async def _reader_of(session: AsyncSession, mail: Mail) -> Reader:
    """The recipient as they are now: a name changed or a zone chosen since the mail was written counts."""
    if mail.user_id is None:
        return Reader()
    row = (
        await session.execute(select(User.name, User.time_zone, User.deleted_at).where(User.id == mail.user_id))
    ).one_or_none()
    if row is None:
        return Reader()
    return Reader(name=None if row.deleted_at else row.name.strip() or None, time_zone=row.time_zone)


async def _record_failure(sessions: async_sessionmaker[AsyncSession], mail_id: uuid.UUID, error: str) -> None:
    async with sessions.begin() as session:
        await session.execute(
            update(Mail)
            .where(Mail.id == mail_id, Mail.sent_at.is_(None))
            .values(attempts=Mail.attempts + 1, last_error=error[:ERROR_LIMIT])
        )


@sweep_step("mail")
async def requeue_undelivered_mail(session: AsyncSession, settings: Settings) -> int:
    """Send again every mail whose message was lost or whose last attempt failed, with a growing pause."""
    due = await session.scalars(
        select(Mail.id)
        .where(
            Mail.sent_at.is_(None),
            Mail.attempts < MAX_ATTEMPTS,
            Mail.created_at
            < func.now()
            - text("make_interval(secs => :base * power(2, mails.attempts))").bindparams(base=RETRY_AFTER_SECONDS),
        )
        .order_by(Mail.created_at)
        .limit(500)
    )
    ids = list(due)
    for mail_id in ids:
        enqueue_job(session, DELIVER_MAIL, mail_id)
    return len(ids)
