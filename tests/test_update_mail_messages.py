"""An update's mails are built once per shape and filled in for each reader (service.mail_shapes): what the SMTP
server receives is a well-formed message, as the email package reads it: headers, encodings, the reader's name and
links, and the one-click unsubscribe link as RFC 2369 and RFC 8058 write it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtplib.email import flatten_message
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Mail, User
from campaigns.update_mail import fan_out_update
from service.devservices import free_port
from service.mail import Reader, ShapedMessages, build_message, mail_templates, render_mail, send_update_mails
from service.settings import Settings
from tests.factories import insert_campaign, insert_pledge, insert_product, insert_tier
from tests.helpers import sign_up

SENDER = "Kindling <updates@kindling.example>"
BASE_URL = "https://kindling.example"
TEXTS = {
    "en": {
        "campaign_title": "Paddy Guard",
        "update_title": "The pilot run is done, and the next one is booked for the spring",
        "update_body": "Boards **tested**.\n\nA line long enough to be broken by quoted-printable, " * 3,
        "update_body_html": "<p>Boards <strong>tested</strong>.</p>" * 20,
        "update_language": "en",
    },
    "zh_CN": {
        "campaign_title": "稻田卫士",
        "update_title": "首批已确认",
        "update_body": "工厂说**可以**。\n" * 30,
        "update_body_html": "<p>工厂说<strong>可以</strong>。</p>" * 30,
        "update_language": "zh_CN",
    },
}


@dataclass
class RawInbox:
    """An SMTP server's mailbox that keeps each message's bytes as they arrived, and the envelope's recipients."""

    url: str = ""

    def __post_init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def raw_inbox() -> Iterator[RawInbox]:
    inbox = RawInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    controller.stop()


def well_formed(raw: bytes) -> EmailMessage:
    """The message as a mail client reads it, after checking what SMTP and RFC 5322 ask of its bytes: 7-bit, CRLF
    line ends, lines of at most 78 characters but for the unsubscribe link's (at most 998), and no defects."""
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    for line in raw.split(b"\r\n"):
        assert len(line) <= (998 if line.startswith(b"List-Unsubscribe: <") else 78), line
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert [part.defects for part in message.walk()] == [[], [], []]
    assert message.get_content_type() == "multipart/alternative"
    return message


def content(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    assert body is not None and body.get_content_charset() == "utf-8"
    text = body.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def test_a_mail_filled_into_its_shape_reads_as_the_email_package_builds_it() -> None:
    templates = mail_templates(dev=False)
    facts = {"campaign_url": "https://kindling.example/c/paddy", "update_id": "u", "visibility": "backers"}
    for locale, reader in (("en", Reader('Ada & "Bo" <b>')), ("zh_CN", Reader("李雷")), ("en", Reader(None))):
        messages = ShapedMessages(templates, {locale: TEXTS[locale]}, base_url=BASE_URL, sender=SENDER)
        user_id = uuid.uuid4()
        link = f"https://kindling.example/unsubscribe/{user_id}.updates.{'S' * 43}"
        for address in ("ada@example.com", "bo+kindling@mail.example.org"):
            mail = Mail(
                id=uuid.uuid4(), kind="campaign_update", user_id=user_id, to_address=address, locale=locale, facts=facts
            )
            rendered, flat = messages.build(mail, reader, link, flatten=True)
            # What the outbox keeps is what render_mail renders for this reader.
            expected = render_mail(
                templates, mail, base_url=BASE_URL, reader=reader, unsubscribe=link, shared_facts=TEXTS[locale]
            )
            assert rendered == expected
            assert flat is not None and flat.envelope_sender == "updates@kindling.example"
            ours = well_formed(flat.message)
            theirs = message_from_bytes(
                flatten_message(build_message(mail, expected, sender=SENDER, unsubscribe=link)), policy=policy.default
            )
            assert isinstance(theirs, EmailMessage)
            for header in ("From", "To", "Subject", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"):
                assert ours[header] == theirs[header], header
            assert ours["List-Unsubscribe"] == f"<{link}>" and ours["Message-ID"] == f"<{mail.id}@kindling.example>"
            assert f"\r\nList-Unsubscribe: <{link}>\r\n".encode() in flat.message
            for subtype in ("plain", "html"):
                assert content(ours, subtype) == content(theirs, subtype)
            assert content(ours, "plain") == expected.text and content(ours, "html") == f"{expected.html}\n"
            if reader.name:
                assert reader.name in content(ours, "plain")
    # An address the headers cannot carry as written goes through the email package, whose List-Unsubscribe link
    # stays as written too.
    mail = Mail(
        id=uuid.uuid4(), kind="campaign_update", user_id=user_id, to_address="李@例子.中国", locale="en", facts=facts
    )
    rendered, flat = messages.build(mail, Reader("Li"), link, flatten=True)
    assert flat is None and "Hello Li," in rendered.text
    built = flatten_message(build_message(mail, rendered, sender=SENDER, unsubscribe=link), utf8=True)
    assert f"\r\nList-Unsubscribe: <{link}>\r\n".encode() in built


async def test_each_backer_receives_an_update_mail_well_formed_in_their_language_with_their_own_unsubscribe_link(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    raw_inbox: RawInbox,
) -> None:
    maker = await sign_up(client, "Maker")
    ada = await sign_up(client, "Ada <& Bo>", "ada@example.com")
    lin = await sign_up(client, "李雷", "lin@example.com")
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, maker_id=maker.id, status="live")
        await insert_product(session, campaign, "BOARD", batch_size=100)
        kit = await insert_tier(session, campaign, {"BOARD": 1})
        for backer in (ada, lin):
            await insert_pledge(session, campaign, kit, backer_id=backer.id, status="active")
        await session.execute(update(User).where(User.id == uuid.UUID(lin.id)).values(locale="zh_CN"))
    posted = await client.post(
        f"/api/v1/campaigns/{campaign.id}/updates",
        json={
            "title": "First batch confirmed",
            "body": "The factory said **yes**. Read more at https://kindling.example/faq",
            "visibility": "backers",
            "language": "en",
            "translations": {"zh_CN": {"title": "首批已确认", "body": "工厂说**可以**。"}},
        },
        headers=maker.headers,
    )
    assert posted.status_code == 201, posted.text
    update_id = posted.json()["id"]
    async with sessions.begin() as session:
        assert await fan_out_update(session, update_id, base_url=settings.base_url) == 2
    # One mail a chunk, two connections at once: each takes one, and no mail goes twice.
    smtp = replace(settings, smtp_url=raw_inbox.url)
    assert await send_update_mails(sessions, smtp, update_id, chunk=1, connections=2) == 2
    assert len(raw_inbox.received) == 2

    async with sessions() as session:
        kept = {
            mail.to_address: mail for mail in await session.scalars(select(Mail).where(Mail.kind == "campaign_update"))
        }
    received = {}
    for recipients, raw in raw_inbox.received:
        message = well_formed(raw)
        assert recipients == [message["To"]]
        received[message["To"]] = message
    assert sorted(received) == sorted([ada.email, lin.email])
    for address, message in received.items():
        mail = kept[address]
        assert message["Message-ID"] == f"<{mail.id}@{parseaddr(settings.mail_from)[1].rpartition('@')[2]}>"
        assert message["Subject"] == mail.subject
        assert content(message, "plain") == mail.text_body and content(message, "html") == f"{mail.html_body}\n"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = re.fullmatch(r"<(https?://[^>]+/unsubscribe/[^>]+)>", message["List-Unsubscribe"])
        assert link is not None and link.group(1) in content(message, "plain")
        assert f'href="{link.group(1)}"' in content(message, "html")
        assert mail.user_id is not None and str(mail.user_id) in link.group(1)

    english, chinese = received[ada.email], received[lin.email]
    assert english["Subject"] == f"{campaign.title}: First batch confirmed"
    assert "Hello Ada <& Bo>," in content(english, "plain") and "Hello Ada &lt;&amp; Bo&gt;," in content(
        english, "html"
    )
    assert "<strong>yes</strong>" in content(english, "html") and "首批" not in content(english, "plain")
    assert "首批已确认" in chinese["Subject"] and "李雷" in content(chinese, "plain")
    assert "<p>工厂说<strong>可以</strong>。</p>" in content(chinese, "html")

    # The link in Lin's mail turns update mail off for Lin alone, with no session (the mail client's one click).
    path = "/unsubscribe/" + chinese["List-Unsubscribe"][1:-1].rsplit("/unsubscribe/", 1)[1]
    clicked = await client.post(
        path, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert clicked.status_code == 200, clicked.text
    async with sessions() as session:
        wanting = await session.scalars(select(User.email).where(User.notify_updates, User.id != uuid.UUID(maker.id)))
        assert list(wanting) == [ada.email]
