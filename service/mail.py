"""The one mailer: renders an outbox row in its recipient's language, sends it by SMTP or keeps it for /dev/mail."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
from jinja2 import Environment
from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.ids import parse_id
from campaigns.jobs import enqueue_job
from campaigns.languages import VERSIONS_FACT
from campaigns.models import Campaign, CampaignUpdate, Mail, MailSuppression, User
from campaigns.notification_settings import UNSUBSCRIBE_KINDS, is_suppressed, suppress_address, unsubscribe_token
from campaigns.notifications import DELIVER_MAIL, SECRET_FACT
from campaigns.preferences import DEFAULT_TIME_ZONE
from campaigns.update_mail import FAN_OUT_UPDATE, SEND_UPDATE_MAILS, unmailed_updates, update_texts
from service.i18n import gettext as _
from service.i18n import use_locale, use_time_zone
from service.mail_shapes import ADDRESS, MESSAGE_POLICY, NAME, UNSUBSCRIBE, MessageShape, Recipient
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
SUPPRESSED = "not sent: the address bounced or complained before"
# An update's mails are sent this many to a transaction and one SMTP connection, over this many connections at once.
UPDATE_MAILS_PER_CHUNK = 100
UPDATE_MAIL_CONNECTIONS = 2


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


def render_mail(
    templates: Environment,
    mail: Mail,
    *,
    base_url: str,
    reader: Reader | None = None,
    unsubscribe: str | None = None,
    shared_facts: Mapping[str, Any] | None = None,
    to_address: str | None = None,
) -> RenderedMail:
    """templates/mail/<kind>.subject.txt, .txt and .html, in the mail's language, with its facts, greeting the
    reader by name and showing times on their clock (and the unsubscribe link, for mail that has one). `shared_facts`:
    facts that many mails share and the outbox does not repeat in each (an update's texts in the mail's language).
    `to_address`: in place of the mail's (a slot of service.mail_shapes)."""
    reader = reader or Reader()
    # Facts read when the mail is sent (an update's texts as they are then, in the mail's language) win over the
    # outbox's; then the maker's texts in the reader's language, where they wrote a version in it
    # (campaigns.languages.mail_versions).
    context: dict[str, Any] = {
        **mail.facts,
        **(shared_facts or {}),
        "base_url": base_url,
        "to_address": mail.to_address if to_address is None else to_address,
        "unsubscribe_url": unsubscribe,
    }
    context.update((mail.facts.get(VERSIONS_FACT) or {}).get(mail.locale) or {})
    with use_locale(mail.locale), use_time_zone(reader.time_zone):
        context["greeting"] = _("Hello %(name)s,") % {"name": reader.name} if reader.name else _("Hello,")
        subject = templates.get_template(f"mail/{mail.kind}.subject.txt").render(context)
        body = templates.get_template(f"mail/{mail.kind}.txt").render(context)
        html = templates.get_template(f"mail/{mail.kind}.html").render(context)
    return RenderedMail(subject=" ".join(subject.split()), text=body.strip() + "\n", html=html)


def unsubscribe_url(mail: Mail, settings: Settings) -> str | None:
    """The one-click unsubscribe link of a mail a person may turn off (campaigns.notification_settings), else None."""
    kind = UNSUBSCRIBE_KINDS.get(mail.kind)
    if kind is None or mail.user_id is None:
        return None
    return f"{settings.base_url}/unsubscribe/{unsubscribe_token(settings.secret_key, mail.user_id, kind)}"


def build_message(mail: Mail, rendered: RenderedMail, *, sender: str, unsubscribe: str | None = None) -> EmailMessage:
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = sender
    message["To"] = mail.to_address
    message["Subject"] = rendered.subject
    # The same id on every attempt lets a receiving server drop a copy we had to send twice.
    message["Message-ID"] = f"<{mail.id}@{_sender_domain(sender)}>"
    if unsubscribe is not None:
        # RFC 8058: a mail client offers "unsubscribe" and POSTs `List-Unsubscribe=One-Click` to the link itself.
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def _sender_domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "kindling.localhost"


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
            if await is_suppressed(session, mail.to_address):
                _give_up(mail, SUPPRESSED)
                return False
            reader = await _reader_of(session, mail)
            unsubscribe = unsubscribe_url(mail, settings)
            rendered = render_mail(
                mail_templates(dev=settings.dev),
                mail,
                base_url=settings.base_url,
                reader=reader,
                unsubscribe=unsubscribe,
            )
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
                message = build_message(mail, rendered, sender=settings.mail_from, unsubscribe=unsubscribe)
                await send_over_smtp(message, settings.smtp_url)
                log.info("mail %s (%s) sent to %s", mail.id, mail.kind, mail.to_address)
    except aiosmtplib.SMTPRecipientsRefused as refused:
        await _record_bounce(sessions, ident, refused)
        return False
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
        select(Mail.id).where(Mail.campaign_update_id.is_(None), *_due()).order_by(Mail.created_at).limit(500)
    )
    ids = list(due)
    for mail_id in ids:
        enqueue_job(session, DELIVER_MAIL, mail_id)
    # An update's mails go by its send job: one job again for each update with mail due.
    updates = list(
        await session.scalars(
            select(Mail.campaign_update_id).where(Mail.campaign_update_id.is_not(None), *_due()).distinct().limit(100)
        )
    )
    for update_id in updates:
        enqueue_job(session, SEND_UPDATE_MAILS, update_id)
    return len(ids) + len(updates)


@sweep_step("update_fan_out")
async def requeue_unmailed_updates(session: AsyncSession, settings: Settings) -> int:
    """Ask again for the fan-out of every update whose job seems lost (still not written to the outbox)."""
    lost = await unmailed_updates(session, older_than_seconds=RETRY_AFTER_SECONDS)
    for update_id in lost:
        enqueue_job(session, FAN_OUT_UPDATE, update_id)
    return len(lost)


def _due() -> tuple[ColumnElement[bool], ...]:
    return (
        Mail.sent_at.is_(None),
        Mail.attempts < MAX_ATTEMPTS,
        Mail.created_at
        < func.now()
        - text("make_interval(secs => :base * power(2, mails.attempts))").bindparams(base=RETRY_AFTER_SECONDS),
    )


def _give_up(mail: Mail, reason: str) -> None:
    """The claimed mail is not sent, and never will be: no attempt is left for the sweep."""
    mail.sent_at = None
    mail.attempts = MAX_ATTEMPTS
    mail.last_error = reason


def _is_permanent(refused: aiosmtplib.SMTPRecipientsRefused) -> bool:
    """A 5xx answer to RCPT TO: the address does not take mail (a hard bounce). 4xx is worth trying again."""
    return any(500 <= error.code < 600 for error in refused.recipients)


async def _record_bounce(
    sessions: async_sessionmaker[AsyncSession], mail_id: uuid.UUID, refused: aiosmtplib.SMTPRecipientsRefused
) -> None:
    """The server refused the recipient: a hard bounce suppresses the address and gives the mail up; a soft one
    counts as a failed attempt."""
    if not _is_permanent(refused):
        await _record_failure(sessions, mail_id, f"SMTPRecipientsRefused: {refused}")
        return
    async with sessions.begin() as session:
        mail = await session.get(Mail, mail_id)
        if mail is None:
            return
        await suppress_address(session, mail.to_address, "bounce", detail=str(refused)[:ERROR_LIMIT])
        _give_up(mail, f"bounced: {refused}"[:ERROR_LIMIT])
        log.warning("mail %s to %s bounced; the address gets no more mail", mail.id, mail.to_address)


async def send_update_mails(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    update_id: uuid.UUID | str,
    *,
    chunk: int = UPDATE_MAILS_PER_CHUNK,
    connections: int = UPDATE_MAIL_CONNECTIONS,
) -> int:
    """Send the update's unsent mails, `chunk` at a time over one SMTP connection, `connections` chunks at once, as
    fast as the server takes them; how many were sent. Each chunk's rows are locked (SKIP LOCKED), so no mail is taken
    twice, by this run or another. A chunk commits with its sends; a failed send stops its connection's work (the
    sweep asks again, later), a refused address is suppressed, a suppressed one is given up."""
    ident = parse_id(update_id)
    if ident is None:
        log.warning("%s: %r is not an update id", SEND_UPDATE_MAILS, update_id)
        return 0
    templates = mail_templates(dev=settings.dev)
    # While one connection's chunk is read and committed, the others send: the database's part hides behind SMTP's.
    lanes = [_send_update_chunks(sessions, settings, templates, ident, chunk) for _ in range(max(connections, 1))]
    return sum(await asyncio.gather(*lanes))


async def _send_update_chunks(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    templates: Environment,
    update_id: uuid.UUID,
    chunk: int,
) -> int:
    sent = 0
    while True:
        async with sessions.begin() as session:
            update = await session.get(CampaignUpdate, update_id)
            if update is None:
                return sent  # taken down: its unsent mails went with it
            mails = list(
                await session.scalars(
                    select(Mail)
                    .where(Mail.campaign_update_id == update_id, Mail.sent_at.is_(None), Mail.attempts < MAX_ATTEMPTS)
                    .order_by(Mail.id)
                    .limit(chunk)
                    .with_for_update(skip_locked=True)
                )
            )
            if not mails:
                return sent
            readers = await _readers_of(session, mails)
            suppressed = set(
                await session.scalars(
                    select(MailSuppression.address).where(
                        MailSuppression.address.in_({mail.to_address for mail in mails})
                    )
                )
            )
            campaign = await session.get_one(Campaign, update.campaign_id)
            shared = {locale: update_texts(campaign, update, locale) for locale in {mail.locale for mail in mails}}
            done, failed = await _send_chunk(session, templates, settings, mails, readers, suppressed, shared)
            sent += done
        if failed:
            return sent


async def _send_chunk(
    session: AsyncSession,
    templates: Environment,
    settings: Settings,
    mails: list[Mail],
    readers: dict[uuid.UUID, Reader],
    suppressed: set[str],
    shared_facts: Mapping[str, Mapping[str, Any]],
) -> tuple[int, bool]:
    """`shared_facts`: the update's texts for each language of the chunk's mails."""
    smtp = _smtp_client(settings.smtp_url) if settings.smtp_url else None
    # The transaction's now(), read once: a SQL expression in a row's values would make the flush one UPDATE per
    # mail instead of one executemany for the chunk.
    now = await session.scalar(select(func.now()))
    messages = ShapedMessages(templates, shared_facts, base_url=settings.base_url, sender=settings.mail_from)
    sent = 0
    try:
        if smtp is not None:
            await smtp.connect()
        for mail in mails:
            if mail.to_address in suppressed:
                _give_up(mail, SUPPRESSED)
                continue
            unsubscribe = unsubscribe_url(mail, settings)
            reader = readers.get(mail.user_id) if mail.user_id else None
            rendered, flat = messages.build(mail, reader or Reader(), unsubscribe, flatten=smtp is not None)
            mail.attempts += 1
            if smtp is not None:
                try:
                    if flat is None:
                        await smtp.send_message(
                            build_message(mail, rendered, sender=settings.mail_from, unsubscribe=unsubscribe)
                        )
                    else:
                        await smtp.sendmail(flat.envelope_sender, [mail.to_address], flat.message)
                except aiosmtplib.SMTPRecipientsRefused as refused:
                    mail.last_error = f"SMTPRecipientsRefused: {refused}"[:ERROR_LIMIT]
                    if _is_permanent(refused):
                        await suppress_address(session, mail.to_address, "bounce", detail=mail.last_error)
                        _give_up(mail, mail.last_error)
                    continue
            mail.subject, mail.text_body, mail.html_body = rendered.subject, rendered.text, rendered.html
            mail.sent_at = now
            sent += 1
    except (aiosmtplib.SMTPException, OSError) as exc:
        # What was sent stays sent (it commits with the chunk); the rest waits for the sweep.
        log.warning("%s stopped after %d mails: %s", SEND_UPDATE_MAILS, sent, exc)
        for mail in mails:
            if mail.sent_at is None and mail.attempts < MAX_ATTEMPTS:
                mail.last_error = f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT]
        return sent, True
    finally:
        if smtp is not None and smtp.is_connected:
            await smtp.quit()
    log.info("%s: %d mails sent", SEND_UPDATE_MAILS, sent)
    return sent, False


@dataclass(frozen=True)
class FlatMessage:
    envelope_sender: str
    message: bytes


class ShapedMessages:
    """A chunk's mails, rendered and encoded once per shape (service.mail_shapes): the mails of one kind, language,
    clock and outbox facts, greeting by name or not, with an unsubscribe link or not."""

    def __init__(
        self,
        templates: Environment,
        shared_facts: Mapping[str, Mapping[str, Any]],
        *,
        base_url: str,
        sender: str,
    ) -> None:
        self.templates = templates
        self.shared_facts = shared_facts
        self.base_url = base_url
        self.sender = sender
        self.domain = _sender_domain(sender)
        self.shapes: dict[tuple[object, ...], MessageShape | None] = {}

    def build(
        self, mail: Mail, reader: Reader, unsubscribe: str | None, *, flatten: bool
    ) -> tuple[RenderedMail, FlatMessage | None]:
        """The mail as render_mail renders it, and its message ready for SMTP when `flatten` and its shape allows
        (None: build_message must build it)."""
        named, linked = reader.name is not None, unsubscribe is not None
        key = (mail.kind, mail.locale, reader.time_zone, named, linked, json.dumps(mail.facts, sort_keys=True))
        if key not in self.shapes:
            slots = Reader(NAME if named else None, reader.time_zone)
            slotted = self._render(mail, slots, UNSUBSCRIBE if linked else None, ADDRESS)
            self.shapes[key] = MessageShape.of(slotted.subject, slotted.text, slotted.html, sender=self.sender)
        shape = self.shapes[key]
        if shape is None:
            return self._render(mail, reader, unsubscribe, mail.to_address), None
        recipient = Recipient(mail.to_address, reader.name, unsubscribe, message_id=f"<{mail.id}@{self.domain}>")
        text, html = shape.texts(recipient)
        rendered = RenderedMail(subject=shape.subject, text=text, html=html)
        message = shape.message(recipient, text, html) if flatten else None
        return rendered, None if message is None else FlatMessage(shape.envelope_sender, message)

    def _render(self, mail: Mail, reader: Reader, unsubscribe: str | None, to_address: str) -> RenderedMail:
        return render_mail(
            self.templates,
            mail,
            base_url=self.base_url,
            reader=reader,
            unsubscribe=unsubscribe,
            shared_facts=self.shared_facts.get(mail.locale),
            to_address=to_address,
        )


def _smtp_client(smtp_url: str) -> aiosmtplib.SMTP:
    parts = urlsplit(smtp_url)
    secure = parts.scheme == "smtps"
    return aiosmtplib.SMTP(
        hostname=parts.hostname or "localhost",
        port=parts.port or (465 if secure else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=secure,
        timeout=SMTP_TIMEOUT,
    )


async def _readers_of(session: AsyncSession, mails: list[Mail]) -> dict[uuid.UUID, Reader]:
    user_ids = {mail.user_id for mail in mails if mail.user_id is not None}
    rows = await session.execute(
        select(User.id, User.name, User.time_zone, User.deleted_at).where(User.id.in_(user_ids))
    )
    return {
        row.id: Reader(name=None if row.deleted_at else row.name.strip() or None, time_zone=row.time_zone)
        for row in rows
    }
