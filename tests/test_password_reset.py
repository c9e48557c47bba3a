"""A forgotten password, a changed password and a changed email address, end to end: the request, the mail over
real SMTP, the link in it followed, and every session and token that must end, ended."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.account_links import LIFETIMES
from campaigns.models import AccountLink, Mail
from service.settings import Settings
from tests.account_helpers import (
    log_in_form,
    mailed_link,
    mails_to,
    new_browser,
    post_form,
    send_outbox,
    text_of,
)
from tests.helpers import PASSWORD, Inbox, sign_up

NEW_PASSWORD = "a brand new passphrase"


async def token_works(client: httpx.AsyncClient, token: str) -> bool:
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


async def logs_in(client: httpx.AsyncClient, email: str, password: str) -> bool:
    response = await client.post("/api/v1/tokens", json={"email": email, "password": password})
    return response.status_code == 201


async def test_a_forgotten_password_is_reset_once_from_the_mailed_link_and_every_session_and_token_ends(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada")
    async with new_browser(client) as browser:
        assert (await log_in_form(browser, ada.email)).status_code == 303
        assert (await browser.get("/account")).status_code == 200

        asked = await client.post("/api/v1/password-resets", json={"email": ada.email.upper()})
        assert asked.status_code == 202, asked.text
        link = await mailed_link(sessions, settings, smtp_inbox, ada.email, "/reset-password/")
        [reset_mail] = [m for m in mails_to(smtp_inbox, ada.email) if m["Subject"] == "Reset your Kindling password"]
        assert "within an hour" in text_of(reset_mail)
        token = link.rsplit("/", 1)[1]

        used = await client.post(f"/api/v1/password-resets/{token}", json={"password": NEW_PASSWORD})
        assert used.status_code == 200, used.text
        assert used.json()["email"] == ada.email

        assert not await token_works(client, ada.token)
        assert (await browser.get("/account")).status_code == 303  # the page session ended too
    assert not await logs_in(client, ada.email, PASSWORD)
    assert await logs_in(client, ada.email, NEW_PASSWORD)
    again = await client.post(f"/api/v1/password-resets/{token}", json={"password": "yet another passphrase"})
    assert again.status_code == 404 and again.json()["type"] == "link-invalid"


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada")
    await send_outbox(sessions, settings, smtp_inbox)
    sent_before = len(smtp_inbox.messages)
    known = await client.post("/api/v1/password-resets", json={"email": ada.email})
    unknown = await client.post("/api/v1/password-resets", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert await send_outbox(sessions, settings, smtp_inbox) == 1
    assert [m["To"] for m in smtp_inbox.messages[sent_before:]] == [ada.email]


async def test_the_link_is_kept_only_as_a_hash_and_the_outbox_forgets_it_once_sent(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada")
    await client.post("/api/v1/password-resets", json={"email": ada.email})
    token = (await mailed_link(sessions, settings, smtp_inbox, ada.email, "/reset-password/")).rsplit("/", 1)[1]
    async with sessions() as session:
        link = await session.scalar(select(AccountLink).where(AccountLink.purpose == "reset_password"))
        mail = await session.scalar(select(Mail).where(Mail.kind == "password_reset"))
    assert link is not None and mail is not None
    assert token not in link.token_hash and len(link.token_hash) == 64
    assert link.expires_at - link.created_at == LIFETIMES["reset_password"] == timedelta(hours=1)
    assert token not in str(mail.facts) and token not in (mail.text_body or "") and token not in (mail.html_body or "")


async def test_a_reset_link_no_longer_works_after_its_hour(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada")
    await client.post("/api/v1/password-resets", json={"email": ada.email})
    token = (await mailed_link(sessions, settings, smtp_inbox, ada.email, "/reset-password/")).rsplit("/", 1)[1]
    async with sessions.begin() as session:
        await session.execute(update(AccountLink).values(expires_at=AccountLink.created_at - timedelta(seconds=1)))
    late = await client.post(f"/api/v1/password-resets/{token}", json={"password": NEW_PASSWORD})
    assert late.status_code == 404 and late.json()["type"] == "link-invalid"
    assert await logs_in(client, ada.email, PASSWORD)


async def test_a_too_short_new_password_is_refused_naming_the_field_and_the_link_still_works(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada")
    await client.post("/api/v1/password-resets", json={"email": ada.email})
    token = (await mailed_link(sessions, settings, smtp_inbox, ada.email, "/reset-password/")).rsplit("/", 1)[1]
    short = await client.post(f"/api/v1/password-resets/{token}", json={"password": "short"})
    assert short.status_code == 422
    assert [e["field"] for e in short.json()["errors"]] == ["password"]
    assert await token_works(client, ada.token)
    assert (await client.post(f"/api/v1/password-resets/{token}", json={"password": NEW_PASSWORD})).status_code == 200


async def test_asking_for_resets_too_often_is_slowed_down(client: httpx.AsyncClient) -> None:
    statuses = [
        (await client.post("/api/v1/password-resets", json={"email": "target@example.com"})).status_code
        for _ in range(6)
    ]
    assert statuses == [202] * 5 + [429]
    bad = await client.post("/api/v1/password-resets", json={"email": "not-an-email"})
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["email"]


async def test_the_reset_pages_mail_a_link_that_sets_a_new_password_in_chinese_too(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada")
    async with new_browser(client) as browser:
        login = await browser.get("/login")
        assert 'href="/forgot-password"' in login.text
        sent = await post_form(browser, "/forgot-password", {"email": ada.email}, form_page="/forgot-password")
        assert sent.status_code == 200 and f"If an account uses {ada.email}" in sent.text
        nobody = await post_form(browser, "/forgot-password", {"email": "no@example.com"}, form_page="/forgot-password")
        assert nobody.status_code == 200 and "If an account uses no@example.com" in nobody.text
        bad = await post_form(browser, "/forgot-password", {"email": "nope"}, form_page="/forgot-password")
        assert bad.status_code == 422 and "Enter a valid email address" in bad.text

        link = await mailed_link(sessions, settings, smtp_inbox, ada.email, "/reset-password/")
        chinese = await browser.get(link + "?lang=zh_CN")
        assert chinese.status_code == 200 and "设置新密码" in chinese.text
        short = await post_form(browser, link, {"password": "short"}, form_page=link)
        assert short.status_code == 422 and 'aria-invalid="true"' in short.text
        saved = await post_form(browser, link, {"password": NEW_PASSWORD}, form_page=link)
        assert saved.status_code == 303 and saved.headers["location"] == "/login?done=password-reset"
        gone = await browser.get(link)
        assert gone.status_code == 404 and "/forgot-password" in gone.text
        assert (await log_in_form(browser, ada.email, NEW_PASSWORD)).status_code == 303


async def test_changing_the_password_asks_for_the_current_one_and_ends_every_other_session_and_token(
    client: httpx.AsyncClient,
) -> None:
    ada = await sign_up(client, "Ada")
    other = (await client.post("/api/v1/tokens", json={"email": ada.email, "password": PASSWORD})).json()["token"]
    headers = {"Authorization": f"Bearer {ada.token}"}
    wrong = await client.put(
        "/api/v1/me/password", json={"current_password": "not my password", "password": NEW_PASSWORD}, headers=headers
    )
    assert wrong.status_code == 422 and [e["field"] for e in wrong.json()["errors"]] == ["current_password"]
    assert await token_works(client, other)

    async with new_browser(client) as elsewhere:
        await log_in_form(elsewhere, ada.email)
        changed = await client.put(
            "/api/v1/me/password", json={"current_password": PASSWORD, "password": NEW_PASSWORD}, headers=headers
        )
        assert changed.status_code == 200, changed.text
        assert await token_works(client, ada.token)  # the one in hand
        assert not await token_works(client, other)
        assert (await elsewhere.get("/account")).status_code == 303
    assert await logs_in(client, ada.email, NEW_PASSWORD)


async def test_the_account_page_changes_the_password_and_keeps_this_browser_signed_in(
    client: httpx.AsyncClient,
) -> None:
    ada = await sign_up(client, "Ada")
    async with new_browser(client) as browser, new_browser(client) as elsewhere:
        await log_in_form(browser, ada.email)
        await log_in_form(elsewhere, ada.email)
        wrong = await post_form(
            browser,
            "/account/password",
            {"current_password": "wrong wrong", "password": NEW_PASSWORD},
            form_page="/account",
        )
        assert wrong.status_code == 422 and "This is not your current password." in wrong.text
        done = await post_form(
            browser, "/account/password", {"current_password": PASSWORD, "password": NEW_PASSWORD}, form_page="/account"
        )
        assert done.status_code == 303
        assert "Your password is changed" in (await browser.get(done.headers["location"])).text
        assert (await elsewhere.get("/account")).status_code == 303
    assert not await token_works(client, ada.token)


async def test_a_new_email_is_confirmed_from_the_new_address_and_the_old_one_is_told(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada")
    taken = await sign_up(client, "Taken")
    headers = {"Authorization": f"Bearer {ada.token}"}
    wrong = await client.post(
        "/api/v1/me/email-changes", json={"email": "ada@new.example", "password": "nope nope"}, headers=headers
    )
    assert wrong.status_code == 422 and [e["field"] for e in wrong.json()["errors"]] == ["password"]
    clash = await client.post(
        "/api/v1/me/email-changes", json={"email": taken.email, "password": PASSWORD}, headers=headers
    )
    assert clash.status_code == 409 and clash.json()["type"] == "email-taken"

    asked = await client.post(
        "/api/v1/me/email-changes", json={"email": "Ada@New.example", "password": PASSWORD}, headers=headers
    )
    assert asked.status_code == 202, asked.text
    assert (await client.get("/api/v1/me", headers=headers)).json()["email"] == ada.email  # not yet
    link = await mailed_link(sessions, settings, smtp_inbox, "ada@new.example", "/confirm-email/")
    token = link.rsplit("/", 1)[1]

    confirmed = await client.post(f"/api/v1/email-changes/{token}")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["email"] == "ada@new.example" and confirmed.json()["email_verified"] is True
    await send_outbox(sessions, settings, smtp_inbox)
    [told] = [m for m in mails_to(smtp_inbox, ada.email) if "was changed" in m["Subject"]]
    assert "ada@new.example" in text_of(told)
    assert await logs_in(client, "ada@new.example", PASSWORD)
    assert not await logs_in(client, ada.email, PASSWORD)
    assert (await client.post(f"/api/v1/email-changes/{token}")).status_code == 404


async def test_the_account_page_changes_the_email_after_the_new_address_confirms(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    ada = await sign_up(client, "Ada")
    async with new_browser(client) as browser:
        await log_in_form(browser, ada.email)
        bad = await post_form(
            browser, "/account/email", {"email": "nope", "email_password": PASSWORD}, form_page="/account"
        )
        assert bad.status_code == 422 and "Enter a valid email address" in bad.text
        asked = await post_form(
            browser, "/account/email", {"email": "ada@moved.example", "email_password": PASSWORD}, form_page="/account"
        )
        assert asked.status_code == 303
        link = await mailed_link(sessions, settings, smtp_inbox, "ada@moved.example", "/confirm-email/")
        shown = await browser.get(link)
        assert shown.status_code == 200 and "ada@moved.example" in shown.text
        confirmed = await post_form(browser, link, {}, form_page=link)
        assert confirmed.status_code == 200 and "Your email address is changed" in confirmed.text
        assert "ada@moved.example" in (await browser.get("/account")).text


async def test_the_account_operations_are_in_the_openapi_document_with_their_errors(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    expected = {
        ("post", "/api/v1/password-resets"): {"202", "422", "429"},
        ("post", "/api/v1/password-resets/{token}"): {"200", "404", "422"},
        ("put", "/api/v1/me/password"): {"200", "401", "422"},
        ("post", "/api/v1/me/email-changes"): {"202", "401", "409", "422", "429"},
        ("post", "/api/v1/email-changes/{token}"): {"200", "404", "409"},
        ("post", "/api/v1/email-verifications"): {"202", "401", "409", "429"},
        ("post", "/api/v1/email-verifications/{token}"): {"200", "404"},
        ("get", "/api/v1/me/sessions"): {"200", "401"},
        ("delete", "/api/v1/me/sessions/{session_id}"): {"204", "401", "404"},
        ("get", "/api/v1/me/tokens"): {"200", "401"},
        ("get", "/api/v1/me/export"): {"200", "401"},
        ("post", "/api/v1/me/deletion"): {"204", "401", "409", "422"},
        ("delete", "/api/v1/me/tokens/{token_id}"): {"204", "401", "404"},
        ("post", "/api/v1/campaigns/{campaign_id}/submit"): {"409"},
        ("post", "/api/v1/spaces/{space_id}/operators"): {"409"},
    }
    for (method, path), statuses in expected.items():
        assert statuses <= set(paths[path][method]["responses"]), (method, path)
    assert "email_verified" in str((await client.get("/api/v1/openapi.json")).json()["components"]["schemas"]["MeOut"])
