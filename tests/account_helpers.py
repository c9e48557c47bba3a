"""Arrangements the account tests share: browsers logged in through the form, and mail read from a real SMTP
server with the links in it followed as a person would."""

from __future__ import annotations

import re
from dataclasses import replace
from email.message import EmailMessage

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Mail
from service.mail import deliver_mail
from service.settings import Settings
from tests.helpers import PASSWORD, Inbox
from tests.pages import csrf_from, new_browser, post_form


async def log_in_form(browser: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    token = await csrf_from(browser, "/login")
    return await browser.post("/login", data={"csrf_token": token, "email": email, "password": password})


async def send_outbox(sessions: async_sessionmaker[AsyncSession], settings: Settings, inbox: Inbox) -> int:
    """What the worker does: deliver every unsent mail over SMTP to `inbox`. Returns how many went."""
    async with sessions() as session:
        unsent = list(await session.scalars(select(Mail.id).where(Mail.sent_at.is_(None)).order_by(Mail.created_at)))
    smtp = replace(settings, smtp_url=inbox.url)
    for mail_id in unsent:
        assert await deliver_mail(sessions, smtp, mail_id)
    return len(unsent)


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def mails_to(inbox: Inbox, address: str) -> list[EmailMessage]:
    return [message for message in inbox.messages if message["To"] == address]


def link_in(message: EmailMessage, settings: Settings, path: str) -> str:
    """The local path of the link to `path`… in the mail's text (and the same link is in its HTML part)."""
    found = re.search(re.escape(settings.base_url) + "(" + re.escape(path) + r"[A-Za-z0-9_\-]+)", text_of(message))
    assert found, f"no {path} link in:\n{text_of(message)}"
    html = message.get_body(("html",))
    assert html is not None and settings.base_url + found.group(1) in str(html.get_content())
    return found.group(1)


async def mailed_link(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, inbox: Inbox, address: str, path: str
) -> str:
    """Send the outbox, then the path of the `path`… link in the latest mail to `address`."""
    await send_outbox(sessions, settings, inbox)
    found = [message for message in mails_to(inbox, address) if path in text_of(message)]
    assert found, f"no mail to {address} with a {path} link"
    return link_in(found[-1], settings, path)


__all__ = ["csrf_from", "log_in_form", "mails_to", "new_browser", "post_form", "send_outbox", "text_of"]
