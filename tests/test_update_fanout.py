"""An update reaches its backers through the fan-out job and the send job, never from the maker's request; each mail
offers one-click unsubscribe (RFC 8058); the settings page and API turn kinds of mail off; a bounced or complaining
address gets no more mail."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import AuditEntry, CampaignUpdate, Mail, MailSuppression, User
from campaigns.notifications import notify
from campaigns.update_mail import FAN_OUT_UPDATE, SEND_UPDATE_MAILS, fan_out_update
from service.broker import ListSender
from service.database import unit_of_work
from service.devservices import free_port
from service.mail import MAX_ATTEMPTS, deliver_mail, send_update_mails
from service.settings import Settings
from service.sweep import sweep_once
from tests.factories import insert_campaign, insert_pledge, insert_product, insert_tier
from tests.helpers import Actor, Inbox, create_space, enrol_two_factor, make_admin, sign_up
from tests.pages import logged_in, post_form


class BouncingInbox(Inbox):
    """An SMTP server that refuses (550) every recipient whose address starts with "gone"."""

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("gone"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def bouncing_inbox() -> Iterator[BouncingInbox]:
    inbox = BouncingInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    controller.stop()


async def post_update(client: httpx.AsyncClient, maker: Actor, campaign_id: uuid.UUID, title: str) -> str:
    posted = await client.post(
        f"/api/v1/campaigns/{campaign_id}/updates",
        json={"title": title, "body": "The **mould** is ready.", "visibility": "backers"},
        headers=maker.headers,
    )
    assert posted.status_code == 201, posted.text
    return str(posted.json()["id"])


async def update_mails(sessions: async_sessionmaker[AsyncSession], update_id: str) -> list[Mail]:
    async with sessions() as session:
        found = await session.scalars(select(Mail).where(Mail.campaign_update_id == uuid.UUID(update_id)))
        return list(found)


async def fan_out_and_send(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, jobs: ListSender, update_id: str
) -> int:
    """What the worker does with the jobs the post asked for: the fan-out, then the send job it asks for."""
    assert [(job.actor_name, job.args) for job in jobs.jobs if job.actor_name == FAN_OUT_UPDATE] == [
        (FAN_OUT_UPDATE, (update_id,))
    ]
    async with unit_of_work(sessions, jobs) as session:
        await fan_out_update(session, update_id, base_url=settings.base_url, batch_size=2)
    assert [job.args for job in jobs.jobs if job.actor_name == SEND_UPDATE_MAILS] == [(update_id,)]
    jobs.jobs.clear()
    return await send_update_mails(sessions, settings, update_id, chunk=2)


async def test_an_update_is_fanned_out_in_batches_sent_with_one_click_unsubscribe_and_skips_who_opted_out(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    jobs: ListSender,
    bouncing_inbox: BouncingInbox,
) -> None:
    admin = await enrol_two_factor(sessions, await make_admin(sessions, await sign_up(client, "Admin")))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker")
    people = {name: await sign_up(client, name, f"{name.lower()}@example.com") for name in ("Ada", "Bo", "Cy", "Di")}
    gone = await sign_up(client, "Gone", "gone@example.com")
    quiet = await sign_up(client, "Quiet", "quiet@example.com")
    walked = await sign_up(client, "Walked", "walked@example.com")
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, maker_id=maker.id, space_id=space["id"], status="live")
        await insert_product(session, campaign, "BOARD", batch_size=100)
        kit = await insert_tier(session, campaign, {"BOARD": 1})
        for person in (*people.values(), gone, quiet):
            await insert_pledge(session, campaign, kit, backer_id=person.id, status="active")
        await insert_pledge(session, campaign, kit, backer_id=walked.id, status="cancelled")
        await session.execute(update(User).where(User.id == uuid.UUID(quiet.id)).values(notify_updates=False))
        await session.execute(update(User).where(User.id == uuid.UUID(people["Di"].id)).values(locale="zh_CN"))
    smtp = replace(settings, smtp_url=bouncing_inbox.url)

    first = await post_update(client, maker, campaign.id, "Tooling")
    assert await update_mails(sessions, first) == []  # the request wrote no mail
    # Batches of two: three INSERT … SELECT for the five who want it; the one who turned updates off is left out.
    assert await fan_out_and_send(sessions, smtp, jobs, first) == 4
    async with sessions.begin() as session:
        assert await fan_out_update(session, first, base_url=settings.base_url) == 0  # done once only
    mails = await update_mails(sessions, first)
    assert sorted(m.to_address for m in mails) == sorted([*(p.email for p in people.values()), gone.email])
    assert sorted(m.to_address for m in mails if m.sent_at) == sorted(p.email for p in people.values())
    # The server refused gone@: its address is suppressed, and its mail given up.
    async with sessions() as session:
        assert await session.scalar(select(MailSuppression.reason).where(MailSuppression.address == gone.email)) == (
            "bounce"
        )
    received = {message["To"]: message for message in bouncing_inbox.messages}
    assert sorted(received) == sorted(p.email for p in people.values())
    ada_mail = received[people["Ada"].email]
    assert ada_mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.fullmatch(r"<(http://[^>]+/unsubscribe/[^>]+)>", ada_mail["List-Unsubscribe"])
    assert link is not None
    assert link.group(1) in ada_mail.get_body(("plain",)).get_content()
    assert "Tooling" in received[people["Di"].email]["Subject"]

    # The mail client's one-click POST, without any session; a forged token finds nothing.
    path = "/unsubscribe/" + link.group(1).rsplit("/unsubscribe/", 1)[1]
    clicked = await client.post(
        path, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert clicked.status_code == 200, clicked.text
    assert (await client.post(path[:-3] + "AAA")).status_code == 404
    assert (await client.post(path.replace("updates", "messages"))).status_code == 404
    # An admin records Bo's complaint (in the audit log).
    complained = await client.post(
        "/api/v1/mail-suppressions", json={"address": " BO@example.com", "reason": "complaint"}, headers=admin.headers
    )
    assert complained.status_code == 201, complained.text
    assert complained.json() == {"address": "bo@example.com", "reason": "complaint", "added": True}
    refused = await client.post(
        "/api/v1/mail-suppressions", json={"address": "x@example.com", "reason": "spite"}, headers=admin.headers
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "reason"
    not_admin = await client.post(
        "/api/v1/mail-suppressions", json={"address": "x@example.com", "reason": "bounce"}, headers=maker.headers
    )
    assert not_admin.status_code == 403

    bouncing_inbox.messages.clear()
    second = await post_update(client, maker, campaign.id, "Shipping")
    assert await fan_out_and_send(sessions, smtp, jobs, second) == 2
    assert sorted(m["To"] for m in bouncing_inbox.messages) == sorted([people["Cy"].email, people["Di"].email])
    async with sessions() as session:
        audited = await session.scalar(select(func.count()).where(AuditEntry.action == "mail.suppress"))
    assert audited == 1


async def test_notification_settings_change_from_the_api_and_the_account_page_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ada = await sign_up(client, "Ada")
    got = await client.get("/api/v1/me/notification-settings", headers=ada.headers)
    assert got.json() == {"updates": True, "comments": True, "messages": True}
    changed = await client.patch("/api/v1/me/notification-settings", json={"comments": False}, headers=ada.headers)
    assert changed.status_code == 200 and changed.json() == {"updates": True, "comments": False, "messages": True}
    bad = await client.patch("/api/v1/me/notification-settings", json={"updates": "maybe"}, headers=ada.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "updates"
    async with logged_in(client, ada) as browser:
        page = await browser.get("/account/notifications")
        assert page.status_code == 200
        assert 'name="updates" type="checkbox" value="1" checked' in page.text
        assert 'name="comments" type="checkbox" value="1">' in page.text
        saved = await post_form(
            browser, "/account/notifications", {"messages": "1"}, form_page="/account/notifications"
        )
        assert saved.status_code == 303
        chinese = await browser.get("/account/notifications?lang=zh_CN")
        assert "邮件通知" in chinese.text and "已保存" not in chinese.text
    got = await client.get("/api/v1/me/notification-settings", headers=ada.headers)
    assert got.json() == {"updates": False, "comments": False, "messages": True}


async def test_the_sweep_asks_again_for_a_lost_fan_out_and_a_lost_send_and_a_deleted_update_drops_its_mail(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, jobs: ListSender
) -> None:
    maker, backer = await sign_up(client, "Maker"), await sign_up(client, "Backer")
    async with sessions.begin() as session:
        campaign = await insert_campaign(session, maker_id=maker.id, status="live")
        await insert_product(session, campaign, "BOARD", batch_size=100)
        await insert_pledge(session, campaign, await insert_tier(session, campaign, {"BOARD": 1}), backer_id=backer.id)
    update_id = await post_update(client, maker, campaign.id, "Lost")
    jobs.jobs.clear()

    a_minute_ago = func.now() - timedelta(minutes=1)
    async with sessions.begin() as session:
        await session.execute(update(CampaignUpdate).values(created_at=a_minute_ago))
    await sweep_once(sessions, jobs, settings)
    assert [job.args for job in jobs.jobs if job.actor_name == FAN_OUT_UPDATE] == [(update_id,)]
    async with sessions.begin() as session:
        assert await fan_out_update(session, update_id, base_url=settings.base_url) == 1
        await session.execute(update(Mail).where(Mail.kind == "campaign_update").values(created_at=a_minute_ago))
    jobs.jobs.clear()
    await sweep_once(sessions, jobs, settings)
    # The update's mail is sent by its send job, never one message per mail.
    assert [job.args for job in jobs.jobs if job.actor_name == SEND_UPDATE_MAILS] == [(update_id,)]
    (mail,) = await update_mails(sessions, update_id)
    assert (str(mail.id),) not in [job.args for job in jobs.jobs]

    # Taken down before its mail went: the mail not sent goes with it.
    deleted = await client.delete(f"/api/v1/campaigns/{campaign.id}/updates/{update_id}", headers=maker.headers)
    assert deleted.status_code == 204, deleted.text
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(Mail.kind == "campaign_update")) == 0


async def test_any_mail_to_a_refused_address_suppresses_it_and_no_mail_goes_there_after(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    bouncing_inbox: BouncingInbox,
) -> None:
    smtp = replace(settings, smtp_url=bouncing_inbox.url)
    gone = await sign_up(client, "Gone", "gone-away@example.com")
    async with sessions.begin() as session:
        user = await session.get_one(User, uuid.UUID(gone.id))
        first, second = await notify(session, user, "welcome"), await notify(session, user, "welcome")
    assert not await deliver_mail(sessions, smtp, first.id)  # 550 from the server: a hard bounce
    assert not await deliver_mail(sessions, smtp, second.id)  # suppressed: not even tried
    assert bouncing_inbox.messages == []
    async with sessions() as session:
        assert await session.scalar(select(MailSuppression.reason).where(MailSuppression.address == gone.email)) == (
            "bounce"
        )
        given_up = await session.scalars(select(Mail.last_error).where(Mail.id.in_([first.id, second.id])))
        assert sorted(error[:7] for error in given_up if error) == ["bounced", "not sen"]
        # Given up for good: the sweep does not send them again.
        assert (
            await session.scalar(
                select(func.count()).where(Mail.id.in_([first.id, second.id]), Mail.attempts < MAX_ATTEMPTS)
            )
            == 0
        )
