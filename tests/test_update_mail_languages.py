"""An update is mailed to each backer in their account's language when the maker wrote a version in it."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Mail, User
from campaigns.update_mail import fan_out_update
from service.mail import mail_templates, render_mail, send_update_mails
from service.settings import Settings
from tests.helpers import launched_campaign, sign_up
from tests.test_updates import back, post


async def test_each_backer_is_mailed_the_update_in_their_own_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    english, chinese = await sign_up(client, "Ada"), await sign_up(client, "Lin")
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.id == uuid.UUID(chinese.id)).values(locale="zh_CN"))
    for backer in (english, chinese):
        await back(sessions, campaign, backer)
    translated = await post(
        client,
        maker,
        campaign,
        title="First batch confirmed",
        body="The factory said **yes**.",
        language="en",
        translations={"zh_CN": {"title": "首批已确认", "body": "工厂说**可以**。"}},
    )
    assert translated.status_code == 201, translated.text
    untranslated = await post(client, maker, campaign, title="Only in English", body="Plain.", language="en")
    assert untranslated.status_code == 201, untranslated.text

    # What the worker does with the jobs the posts asked for: the fan-out writes the outbox, the send job renders and
    # sends each mail (no SMTP here: kept, rendered, for /dev/mail).
    for posted in (translated, untranslated):
        async with sessions.begin() as session:
            await fan_out_update(session, posted.json()["id"], base_url="http://kindling.test")
        await send_update_mails(sessions, settings, posted.json()["id"])

    async with sessions() as session:
        sent = {
            (mail.to_address, str(mail.campaign_update_id)): mail
            for mail in await session.scalars(select(Mail).where(Mail.kind == "campaign_update"))
        }
    to_english = sent[(english.email, translated.json()["id"])]
    to_chinese = sent[(chinese.email, translated.json()["id"])]
    assert to_english.locale == "en" and to_chinese.locale == "zh_CN"
    assert "First batch confirmed" in (to_english.subject or "") and "首批已确认" not in (to_english.html_body or "")
    assert "The factory said <strong>yes</strong>." in (to_english.html_body or "")
    assert "首批已确认" in (to_chinese.subject or "") and "工厂说**可以**。" in (to_chinese.text_body or "")
    assert "<p>工厂说<strong>可以</strong>。</p>" in (to_chinese.html_body or "")
    assert "原文为" not in (to_chinese.html_body or "")
    # No Chinese version of the second update: the Chinese reader gets the English one, marked as such.
    fallback = sent[(chinese.email, untranslated.json()["id"])]
    assert "Only in English" in (fallback.subject or "") and 'lang="en"' in (fallback.html_body or "")
    assert "原文为英文" in (fallback.html_body or "") and "Plain." in (fallback.html_body or "").split('lang="en"')[1]


async def test_mails_about_a_campaign_name_it_in_the_readers_language_when_the_maker_gave_one(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker = await sign_up(client, "Lin")
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.id == uuid.UUID(maker.id)).values(locale="zh_CN"))
    await launched_campaign(
        client, sessions, maker=maker, language="en", translations={"zh_CN": {"title": "稻田卫士"}}, title="Paddy Guard"
    )
    async with sessions() as session:
        mails = {mail.kind: mail for mail in await session.scalars(select(Mail).where(Mail.to_address == maker.email))}
    launched = mails["campaign_launched"]
    assert launched.facts["campaign_title"] == "Paddy Guard"
    assert launched.facts["versions"] == {"zh_CN": {"campaign_title": "稻田卫士"}}
    rendered = render_mail(mail_templates(dev=False), launched, base_url="http://x")
    assert "稻田卫士" in rendered.subject and "Paddy Guard" not in rendered.text
    # The same mail to a reader of English names it as written.
    launched.locale = "en"
    assert "Paddy Guard" in render_mail(mail_templates(dev=False), launched, base_url="http://x").subject
