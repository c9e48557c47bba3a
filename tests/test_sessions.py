"""Sessions that can end: kept on the server, the cookie holding only a random key; log-out, log-out everywhere,
a list of sessions and tokens with revoke; tokens that expire and may be named; "last used" written sparingly."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import ApiToken, UserSession
from campaigns.sessions import LAST_USED_PRECISION
from service.app import create_app
from service.broker import ListSender
from service.settings import Settings, SettingsError, load_settings
from tests.account_helpers import csrf_from, log_in_form, new_browser, post_form
from tests.helpers import PASSWORD, sign_up


def session_cookie_contents(browser: httpx.AsyncClient) -> dict[str, object]:
    """What Starlette's signed session cookie holds (base64 JSON before the signature)."""
    payload = browser.cookies["kindling_session"].split(".")[0]
    contents: dict[str, object] = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    return contents


async def signed_in(browser: httpx.AsyncClient) -> bool:
    return (await browser.get("/account")).status_code == 200


async def test_the_cookie_carries_only_a_random_key_and_the_server_keeps_its_hash(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ada = await sign_up(client, "Ada")
    async with new_browser(client) as browser:
        await log_in_form(browser, ada.email)
        contents = session_cookie_contents(browser)
    assert set(contents) == {"sid", "csrf"}
    assert ada.id not in json.dumps(contents)
    async with sessions() as session:
        [row] = list(await session.scalars(select(UserSession)))
    assert str(row.user_id) == ada.id and row.key_hash != contents["sid"] and len(row.key_hash) == 64


async def test_logging_out_ends_the_session_for_good_even_for_a_copied_cookie(client: httpx.AsyncClient) -> None:
    ada = await sign_up(client, "Ada")
    async with new_browser(client) as browser, new_browser(client) as thief:
        await log_in_form(browser, ada.email)
        thief.cookies.update(browser.cookies)
        assert await signed_in(thief)
        token = await csrf_from(browser, "/account")
        assert (await browser.post("/logout", data={"csrf_token": token})).status_code == 303
        assert not await signed_in(browser)
        assert not await signed_in(thief)


async def test_the_account_page_lists_sessions_and_tokens_with_where_they_came_from_and_revokes_them(
    client: httpx.AsyncClient,
) -> None:
    ada = await sign_up(client, "Ada")
    named = await client.post(
        "/api/v1/tokens",
        json={"email": ada.email, "password": PASSWORD, "name": "Shop sync"},
        headers={"User-Agent": "shop-sync/1.0"},
    )
    assert named.status_code == 201
    shop = {"Authorization": f"Bearer {named.json()['token']}", "User-Agent": "shop-sync/1.0"}
    assert (await client.get("/api/v1/me", headers=shop)).status_code == 200
    async with new_browser(client) as phone, new_browser(client) as laptop:
        phone.headers["User-Agent"] = "Phone Browser 1.0"
        laptop.headers["User-Agent"] = "Laptop Browser 2.0"
        await log_in_form(phone, ada.email)
        await log_in_form(laptop, ada.email)
        page = await laptop.get("/account")
        assert "Phone Browser 1.0" in page.text and "Laptop Browser 2.0" in page.text and "127.0.0.1" in page.text
        assert "Shop sync" in page.text and "shop-sync/1.0" in page.text

        listed = (await client.get("/api/v1/me/sessions", headers=ada.headers)).json()["items"]
        phone_session = next(s for s in listed if s["user_agent"] == "Phone Browser 1.0")
        assert phone_session["last_used_from"] == "127.0.0.1" and phone_session["current"] is False
        ended = await post_form(laptop, f"/account/sessions/{phone_session['id']}/end", {}, form_page="/account")
        assert ended.status_code == 303
        assert not await signed_in(phone)
        assert await signed_in(laptop)

        tokens = (await client.get("/api/v1/me/tokens", headers=shop)).json()["items"]
        shop_token = next(t for t in tokens if t["name"] == "Shop sync")
        assert shop_token["current"] is True and shop_token["user_agent"] == "shop-sync/1.0"
        revoke = f"/account/tokens/{shop_token['id']}/revoke"
        asked = await post_form(laptop, revoke, {}, form_page="/account")
        assert asked.status_code == 200 and "Revoke this API token?" in asked.text and "Shop sync" in asked.text
        assert (await client.get("/api/v1/me", headers=shop)).status_code == 200
        revoked = await post_form(laptop, revoke, {"confirm": "yes"}, form_page="/account")
        assert revoked.status_code == 303
        assert (await client.get("/api/v1/me", headers=shop)).status_code == 401
        assert (await client.get("/api/v1/me", headers=ada.headers)).status_code == 200


async def test_logging_out_everywhere_ends_every_session_and_token(client: httpx.AsyncClient) -> None:
    ada = await sign_up(client, "Ada")
    async with new_browser(client) as phone, new_browser(client) as laptop:
        await log_in_form(phone, ada.email)
        await log_in_form(laptop, ada.email)
        done = await post_form(laptop, "/account/log-out-everywhere", {}, form_page="/account")
        assert done.status_code == 303 and done.headers["location"] == "/login?done=everywhere"
        assert not await signed_in(laptop) and not await signed_in(phone)
    assert (await client.get("/api/v1/me", headers=ada.headers)).status_code == 401


async def test_the_api_ends_one_session_or_all_and_revokes_one_token(client: httpx.AsyncClient) -> None:
    ada = await sign_up(client, "Ada")
    second = (await client.post("/api/v1/tokens", json={"email": ada.email, "password": PASSWORD})).json()["token"]
    other = {"Authorization": f"Bearer {second}"}
    async with new_browser(client) as browser:
        await log_in_form(browser, ada.email)
        assert (await client.delete("/api/v1/me/sessions", headers=ada.headers)).status_code == 204
        assert not await signed_in(browser)
    mine = (await client.get("/api/v1/me/tokens", headers=ada.headers)).json()["items"]
    other_id = next(t["id"] for t in mine if not t["current"])
    assert (await client.delete(f"/api/v1/me/tokens/{other_id}", headers=ada.headers)).status_code == 204
    assert (await client.get("/api/v1/me", headers=other)).status_code == 401
    again = await client.delete(f"/api/v1/me/tokens/{other_id}", headers=ada.headers)
    assert again.status_code == 404
    ben = await sign_up(client, "Ben")
    not_hers = (await client.get("/api/v1/me/tokens", headers=ben.headers)).json()["items"][0]["id"]
    assert (await client.delete(f"/api/v1/me/tokens/{not_hers}", headers=ada.headers)).status_code == 404
    assert (await client.get("/api/v1/me", headers=ben.headers)).status_code == 200


async def test_a_token_expires_after_the_configured_days(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], jobs: ListSender
) -> None:
    app = create_app(replace(settings, token_days=7), sender=jobs, engine_pool=2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            ada = await sign_up(client, "Ada")
            async with sessions() as session:
                token = await session.scalar(select(ApiToken).where(ApiToken.user_id == uuid.UUID(ada.id)))
            assert token is not None
            assert timedelta(days=7) - timedelta(minutes=1) < token.expires_at - token.created_at <= timedelta(days=7)
            assert (await client.get("/api/v1/me", headers=ada.headers)).status_code == 200
            async with sessions.begin() as session:
                await session.execute(update(ApiToken).values(expires_at=ApiToken.created_at))
            expired = await client.get("/api/v1/me", headers=ada.headers)
            assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def test_kindling_token_days_is_a_setting_with_a_default_of_90(settings: Settings) -> None:
    env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "KINDLING_SECRET_KEY": settings.secret_key,
        "STRIPE_SECRET_KEY": "sk_test_x",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_x",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
    }
    assert load_settings(env).token_days == 90
    assert load_settings(env | {"KINDLING_TOKEN_DAYS": "30"}).token_days == 30
    with pytest.raises(SettingsError, match="KINDLING_TOKEN_DAYS"):
        load_settings(env | {"KINDLING_TOKEN_DAYS": "0"})


async def test_using_a_token_or_session_writes_last_used_at_most_every_few_minutes(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ada = await sign_up(client, "Ada")

    async def row_versions() -> tuple[str, str]:
        # xmin changes with every write of a row: the same xmin means no UPDATE touched it.
        async with sessions() as session:
            token = await session.scalar(text("SELECT xmin::text FROM api_tokens"))
            browser = await session.scalar(text("SELECT xmin::text FROM user_sessions"))
        return str(token), str(browser)

    async with new_browser(client) as browser:
        await log_in_form(browser, ada.email)
        await client.get("/api/v1/me", headers=ada.headers)  # the first use is noted
        await browser.get("/account")
        before = await row_versions()
        for _ in range(5):
            assert (await client.get("/api/v1/me", headers=ada.headers)).status_code == 200
            assert await signed_in(browser)
        assert await row_versions() == before

        stale = LAST_USED_PRECISION + timedelta(seconds=1)
        async with sessions.begin() as session:
            await session.execute(update(ApiToken).values(last_used_at=ApiToken.last_used_at - stale))
            await session.execute(update(UserSession).values(last_used_at=UserSession.last_used_at - stale))
        aged = await row_versions()
        await client.get("/api/v1/me", headers=ada.headers)
        await browser.get("/account")
        after = await row_versions()
        assert after[0] != aged[0] and after[1] != aged[1]
        async with sessions() as session:
            token = await session.scalar(select(ApiToken))
            row = await session.scalar(select(UserSession))
        assert token is not None and row is not None
        assert token.last_used_at is not None and row.last_used_at > row.created_at
