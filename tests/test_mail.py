from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Mail, User
from campaigns.notifications import DELIVER_MAIL, notify
from service.broker import ListSender
from service.i18n import LOCALE_DIR
from service.mail import MAX_ATTEMPTS, deliver_mail, requeue_undelivered_mail
from service.settings import Settings
from service.templating import TEMPLATE_DIR
from tests.helpers import Inbox, sign_up


async def welcome_mail_of(sessions: async_sessionmaker[AsyncSession], email: str) -> Mail:
    async with sessions() as session:
        mail = await session.scalar(select(Mail).where(Mail.to_address == email, Mail.kind == "welcome"))
    assert mail is not None
    return mail


def parts_of(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


async def test_signing_up_queues_a_welcome_mail_sent_after_the_commit(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], jobs: ListSender
) -> None:
    ada = await sign_up(client, "Ada")
    mail = await welcome_mail_of(sessions, ada.email)
    assert mail.sent_at is None and mail.locale == "en" and mail.facts == {"name": "Ada"}
    async with sessions() as session:
        verification = await session.scalar(select(Mail.id).where(Mail.kind == "verify_email"))
    # The welcome, then the link that confirms the address.
    assert [(job.actor_name, job.args) for job in jobs.jobs] == [
        (DELIVER_MAIL, (str(mail.id),)),
        (DELIVER_MAIL, (str(verification),)),
    ]


async def test_a_welcome_mail_goes_over_smtp_in_english(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada")
    mail = await welcome_mail_of(sessions, ada.email)

    assert await deliver_mail(sessions, replace(settings, smtp_url=smtp_inbox.url), mail.id)

    [message] = smtp_inbox.messages
    assert message["To"] == ada.email
    assert message["Subject"] == "Welcome to Kindling, Ada"
    assert message["Message-ID"] == f"<{mail.id}@kindling.localhost>"
    text, html = parts_of(message)
    assert "Hello Ada," in text and "When everyone adds firewood, the flame burns high." in text
    assert "Hello Ada," in html and f'href="{settings.base_url}/"' in html
    delivered = await welcome_mail_of(sessions, ada.email)
    assert delivered.sent_at is not None and delivered.attempts == 1 and delivered.last_error is None
    assert delivered.subject == "Welcome to Kindling, Ada" and delivered.text_body == text.replace("\r\n", "\n")


async def test_a_user_who_signed_up_in_chinese_gets_the_mail_in_chinese(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    email = f"lei{uuid.uuid4().hex[:8]}@example.com"
    created = await client.post(
        "/api/v1/users",
        json={"email": email, "password": "correct horse battery", "name": "李雷"},
        headers={"Accept-Language": "zh-CN,zh;q=0.9"},
    )
    assert created.status_code == 201, created.text
    mail = await welcome_mail_of(sessions, email)
    assert mail.locale == "zh_CN"

    assert await deliver_mail(sessions, replace(settings, smtp_url=smtp_inbox.url), mail.id)

    [message] = smtp_inbox.messages
    assert message["Subject"] == "欢迎加入 Kindling，李雷"
    text, html = parts_of(message)
    assert "李雷，你好！" in text and "众人拾柴火焰高。" in text
    assert '<html lang="zh-CN">' in html and "看看创客们正在做什么" in html


async def test_html_in_a_name_is_escaped_in_the_html_part(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    mallory = await sign_up(client, "<b>Mallory</b>", email="mallory@example.com")
    mail = await welcome_mail_of(sessions, mallory.email)

    assert await deliver_mail(sessions, replace(settings, smtp_url=smtp_inbox.url), mail.id)

    text, html = parts_of(smtp_inbox.messages[0])
    assert "Hello <b>Mallory</b>," in text
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in html and "<b>Mallory</b>" not in html


async def test_delivering_a_mail_twice_or_at_once_sends_it_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    smtp = replace(settings, smtp_url=smtp_inbox.url)
    ada = await sign_up(client, "Ada")
    ben = await sign_up(client, "Ben")
    first = await welcome_mail_of(sessions, ada.email)
    second = await welcome_mail_of(sessions, ben.email)

    assert await deliver_mail(sessions, smtp, first.id)
    assert not await deliver_mail(sessions, smtp, first.id)
    concurrent = await asyncio.gather(*(deliver_mail(sessions, smtp, second.id) for _ in range(4)))

    assert sorted(concurrent) == [False, False, False, True]
    assert sorted(message["To"] for message in smtp_inbox.messages) == sorted([ada.email, ben.email])
    assert (await welcome_mail_of(sessions, ben.email)).attempts == 1


async def test_without_smtp_the_mail_is_kept_rendered_for_the_dev_mailbox(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    assert settings.smtp_url is None
    ada = await sign_up(client, "Ada")
    mail = await welcome_mail_of(sessions, ada.email)

    assert await deliver_mail(sessions, settings, mail.id)

    kept = await welcome_mail_of(sessions, ada.email)
    assert kept.sent_at is not None and kept.subject == "Welcome to Kindling, Ada"
    assert kept.text_body is not None and "Hello Ada," in kept.text_body
    assert kept.html_body is not None and "<html" in kept.html_body


async def test_a_failed_send_is_counted_and_retried_later_by_the_sweep(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada")
    mail = await welcome_mail_of(sessions, ada.email)
    nobody_listens = replace(settings, smtp_url="smtp://127.0.0.1:9")

    assert not await deliver_mail(sessions, nobody_listens, mail.id)

    failed = await welcome_mail_of(sessions, ada.email)
    assert failed.sent_at is None and failed.attempts == 1
    assert failed.last_error is not None and "127.0.0.1" in failed.last_error
    async with sessions.begin() as session:
        assert await requeue_undelivered_mail(session, settings) == 0  # too soon after the failure
        await session.execute(
            update(Mail).where(Mail.id == mail.id).values(created_at=Mail.created_at - timedelta(minutes=1))
        )
        assert await requeue_undelivered_mail(session, settings) == 1
    assert await deliver_mail(sessions, replace(settings, smtp_url=smtp_inbox.url), mail.id)
    assert len(smtp_inbox.messages) == 1
    assert (await welcome_mail_of(sessions, ada.email)).attempts == 2


async def test_a_mail_that_failed_too_often_is_given_up(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada")
    async with sessions.begin() as session:
        await session.execute(
            update(Mail).values(attempts=MAX_ATTEMPTS, created_at=Mail.created_at - timedelta(days=1))
        )
        assert await requeue_undelivered_mail(session, settings) == 0

    mail = await welcome_mail_of(sessions, ada.email)
    assert not await deliver_mail(sessions, replace(settings, smtp_url=smtp_inbox.url), mail.id)
    assert smtp_inbox.messages == []


async def test_an_unknown_or_malformed_mail_id_is_a_no_op(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    assert not await deliver_mail(sessions, settings, uuid.uuid4())
    assert not await deliver_mail(sessions, settings, "not-an-id")


async def test_notify_renders_the_mail_in_the_users_current_language(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions.begin() as session:
        user = User(email="mei@example.com", name="梅", password_hash="x", locale="zh_CN")
        session.add(user)
        await session.flush()
        mail = await notify(session, user, "welcome", name=user.name)
    assert await deliver_mail(sessions, settings, mail.id)
    kept = await welcome_mail_of(sessions, "mei@example.com")
    assert kept.subject == "欢迎加入 Kindling，梅"


def test_every_string_of_every_mail_has_a_chinese_translation() -> None:
    method_map = [("**.html", "jinja2"), ("**.txt", "jinja2")]
    options = {"**": {"extensions": "jinja2.ext.i18n"}}
    found = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            TEMPLATE_DIR / "mail", method_map, options_map=options
        )
    }
    with Path(LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    assert found, "no translatable strings found under templates/mail"
    translated = {entry.id for entry in catalog if entry.id and entry.string}
    assert sorted(found - translated) == []
