"""Confirming an address: the link mailed at sign-up (followed for real, over SMTP), sent again on request, and the
steps that wait for it: submitting a campaign, being made an operator, asking for a payout."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, User
from service.demo import demo_people_and_space
from service.settings import Settings
from tests.account_helpers import log_in_form, mailed_link, new_browser, post_form, send_outbox
from tests.helpers import Inbox, create_space, drafted_campaign, make_admin, sign_up
from tests.test_cli import kindling
from tests.test_milestones import funded_books, milestones_of


async def verified(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    me = await client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200, me.text
    return bool(me.json()["email_verified"])


async def test_a_maker_confirms_the_mailed_link_before_submitting_a_campaign(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker", verified=False)
    assert not await verified(client, maker.headers)
    draft = await drafted_campaign(client, maker, space)  # drafting is open to everyone

    refused = await client.post(f"/api/v1/campaigns/{draft['id']}/submit", headers=maker.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "email-unverified"
    assert (await client.get(f"/api/v1/campaigns/{draft['id']}", headers=maker.headers)).json()["status"] == "draft"

    link = await mailed_link(sessions, settings, smtp_inbox, maker.email, "/verify-email/")
    async with new_browser(client) as browser:
        page = await browser.get(link)
        assert page.status_code == 200 and "Your email address is confirmed" in page.text
        assert (await browser.get(link)).status_code == 404  # a link works once
    assert await verified(client, maker.headers)
    submitted = await client.post(f"/api/v1/campaigns/{draft['id']}/submit", headers=maker.headers)
    assert submitted.status_code == 200 and submitted.json()["status"] == "in_review"


async def test_the_api_confirms_from_the_token_and_sends_a_new_link_on_request(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada", verified=False)
    first = (await mailed_link(sessions, settings, smtp_inbox, ada.email, "/verify-email/")).rsplit("/", 1)[1]
    again = await client.post("/api/v1/email-verifications", headers=ada.headers)
    assert again.status_code == 202, again.text
    second = (await mailed_link(sessions, settings, smtp_inbox, ada.email, "/verify-email/")).rsplit("/", 1)[1]
    assert second != first

    confirmed = await client.post(f"/api/v1/email-verifications/{second}")
    assert confirmed.status_code == 200 and confirmed.json()["email_verified"] is True
    assert await verified(client, ada.headers)
    done = await client.post("/api/v1/email-verifications", headers=ada.headers)
    assert done.status_code == 409 and done.json()["type"] == "already-verified"
    unknown = await client.post("/api/v1/email-verifications/not-a-real-token")
    assert unknown.status_code == 404 and unknown.json()["type"] == "link-invalid"


async def test_asking_for_the_link_too_often_is_slowed_down(client: httpx.AsyncClient) -> None:
    ada = await sign_up(client, "Ada", verified=False)
    statuses = [(await client.post("/api/v1/email-verifications", headers=ada.headers)).status_code for _ in range(6)]
    assert statuses == [202] * 5 + [429]


async def test_an_unconfirmed_user_is_not_made_an_operator(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    olu = await sign_up(client, "Olu", verified=False)
    refused = await client.post(
        f"/api/v1/spaces/{space['id']}/operators", json={"email": olu.email}, headers=admin.headers
    )
    assert refused.status_code == 409 and refused.json()["type"] == "email-unverified"
    assert olu.email in refused.json()["detail"]
    assert (await client.get("/api/v1/me", headers=olu.headers)).json()["roles"]["operator_of"] == []


async def test_an_unconfirmed_maker_asks_for_no_payout(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    books = await funded_books(client, sessions)
    async with sessions.begin() as session:
        await session.execute(update(User).where(User.id == uuid.UUID(books.maker.id)).values(email_verified_at=None))
    first = (await milestones_of(client, books))[0]
    refused = await client.post(f"{books.base}/milestones/{first['id']}/request", headers=books.maker.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "email-unverified"
    assert (await milestones_of(client, books))[0]["status"] == "pending"

    async with sessions() as session:
        slug = await session.scalar(select(Campaign.slug).where(Campaign.id == books.campaign_id))
    funding = f"/maker/campaigns/{slug}/funding"
    async with new_browser(client) as browser:
        await log_in_form(browser, books.maker.email)
        page = await post_form(
            browser, f"/maker/campaigns/{slug}/milestones/{first['id']}/request", {}, form_page=funding
        )
        assert page.status_code == 409
        assert "Confirm your email address first" in page.text and 'action="/account/verification"' in page.text
    assert (await milestones_of(client, books))[0]["status"] == "pending"


async def test_the_maker_page_shows_why_submitting_waits_with_a_button_that_sends_the_link_again(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker", verified=False)
    draft = await drafted_campaign(client, maker, space)
    manage = f"/maker/campaigns/{draft['slug']}"
    await send_outbox(sessions, settings, smtp_inbox)
    async with new_browser(client) as browser:
        await log_in_form(browser, maker.email)
        refused = await post_form(browser, f"{manage}/submit", {}, form_page=manage)
        assert refused.status_code == 409
        assert "Confirm your email address first" in refused.text and 'action="/account/verification"' in refused.text
        chinese = await post_form(browser, f"{manage}/submit?lang=zh_CN", {}, form_page=manage)
        assert "请先确认你的邮箱地址" in chinese.text

        resent = await post_form(browser, "/account/verification", {"next": manage}, form_page=manage)
        assert resent.status_code == 303 and resent.headers["location"] == f"{manage}?done=verification"
        link = await mailed_link(sessions, settings, smtp_inbox, maker.email, "/verify-email/")
        assert (await browser.get(link)).status_code == 200
        submitted = await post_form(browser, f"{manage}/submit", {}, form_page=manage)
        assert submitted.status_code == 303


async def test_create_admin_and_the_demo_make_confirmed_users(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    assert (
        await kindling(settings, "users", "create-admin", "--email", "root@example.com", "--password", "a-long-pass")
        == 0
    )
    ada = await sign_up(client, "Ada", verified=False)
    assert await kindling(settings, "users", "create-admin", "--email", ada.email, "--password", "ignored-pass") == 0
    async with sessions.begin() as session:
        await demo_people_and_space(session)
    async with sessions() as session:
        unconfirmed = list(await session.scalars(select(User.email).where(User.email_verified_at.is_(None))))
    assert unconfirmed == []
