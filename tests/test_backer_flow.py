"""A backer's way in and back: sign-up first from "Back this project", a welcome on the reward, "back again"."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign
from tests.helpers import PASSWORD, launched_campaign, sign_up
from tests.pages import csrf_from, log_in, new_browser


async def test_back_this_project_logged_out_offers_sign_up_and_returns_to_the_reward_with_a_welcome(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    pair = campaign["tiers"][1]["id"]
    reward = f"/campaigns/{campaign['slug']}/back?tier={pair}"
    async with new_browser(client) as browser:
        away = await browser.get(reward)
        assert away.status_code == 303
        assert away.headers["location"] == "/signup?next=" + quote(reward, safe="")

        signup_page = await browser.get(away.headers["location"])
        assert signup_page.status_code == 200
        assert f'name="next" value="{reward.replace("&", "&amp;")}"' in signup_page.text
        assert 'href="/login?next=' + quote(reward, safe="/") in signup_page.text

        token = await csrf_from(browser, away.headers["location"])
        form = {"csrf_token": token, "name": "Bea", "email": "bea@example.com", "password": PASSWORD, "next": reward}
        signed_up = await browser.post("/signup", data=form)
        assert signed_up.status_code == 303
        assert signed_up.headers["location"] == f"{reward}&welcome=1"

        back_page = await browser.get(signed_up.headers["location"])
        assert back_page.status_code == 200
        assert "Welcome to Kindling!" in back_page.text
        assert re.search(rf'value="{pair}"\s*checked', back_page.text)
        assert "Welcome to Kindling!" not in (await browser.get(reward)).text
        # Signed in, pages speak the account's language; the language switch changes it.
        chinese = await browser.get(signed_up.headers["location"] + "&lang=zh_CN")
        assert "欢迎来到 Kindling！" in chinese.text


async def test_a_returning_backer_logs_in_from_the_sign_up_page_and_lands_on_the_reward(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    backer = await sign_up(client, "Cai")
    reward = f"/campaigns/{campaign['slug']}/back?tier={campaign['tiers'][0]['id']}"
    async with new_browser(client) as browser:
        token = await csrf_from(browser, "/login?next=" + quote(reward, safe=""))
        form = {"csrf_token": token, "email": backer.email, "password": PASSWORD, "next": reward}
        logged_in = await browser.post("/login", data=form)
        assert logged_in.status_code == 303 and logged_in.headers["location"] == reward
        assert (await browser.get(reward)).status_code == 200


@pytest.mark.parametrize(
    "evil",
    ["//evil.example/back", "https://evil.example/", "http:/evil.example", "/\\evil.example", "javascript:alert(1)"],
)
async def test_sign_up_and_log_in_never_send_anyone_to_another_site(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], evil: str
) -> None:
    backer = await sign_up(client, "Dee")
    async with new_browser(client) as browser:
        page = await browser.get("/signup?next=" + quote(evil, safe=""))
        assert page.status_code == 200 and 'name="next" value="/"' in page.text
        token = await csrf_from(browser, "/signup")
        form = {"csrf_token": token, "name": "Eve", "email": "eve@example.com", "password": PASSWORD, "next": evil}
        signed_up = await browser.post("/signup", data=form)
        assert signed_up.status_code == 303 and signed_up.headers["location"] == "/"
    async with new_browser(client) as browser:
        page = await browser.get("/login?next=" + quote(evil, safe=""))
        assert page.status_code == 200 and 'name="next" value="/"' in page.text
        token = await csrf_from(browser, "/login")
        form = {"csrf_token": token, "email": backer.email, "password": PASSWORD, "next": evil}
        logged_in = await browser.post("/login", data=form)
        assert logged_in.status_code == 303 and logged_in.headers["location"] == "/"
    async with new_browser(client) as browser:
        await log_in(browser, backer)
        already = await browser.get("/login?next=" + quote(evil, safe=""))
        assert already.status_code == 303 and already.headers["location"] == "/"


async def cancelled_pledge(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], browser: httpx.AsyncClient
) -> tuple[dict[str, Any], str]:
    """A live campaign, whose backer (logged in on `browser`) chose a reward, then cancelled the pledge."""
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    token = await log_in(browser, await sign_up(client, "Fay"))
    form = {"csrf_token": token, "tier": campaign["tiers"][0]["id"], "bonus": "", "shipping_country": "CN"}
    chosen = await browser.post(f"/campaigns/{campaign['slug']}/back", data=form | {"action": "pledge"})
    assert chosen.status_code == 303, chosen.text
    pledge_path = chosen.headers["location"].removesuffix("/card")
    cancelled = await browser.post(f"{pledge_path}/cancel", data={"csrf_token": token, "confirm": "yes"})
    assert cancelled.status_code == 303, cancelled.text
    return campaign, token


async def test_a_cancelled_pledge_offers_to_back_again_while_the_campaign_is_live(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with new_browser(stripe_client) as browser:
        campaign, token = await cancelled_pledge(stripe_client, sessions, browser)
        back_again = f'href="/campaigns/{campaign["slug"]}/back">Back again</a>'
        assert back_again in (await browser.get("/me/pledges")).text
        chinese = await browser.get("/me/pledges?lang=zh_CN")
        assert f'href="/campaigns/{campaign["slug"]}/back">再次支持</a>' in chinese.text

        form = {"csrf_token": token, "tier": campaign["tiers"][1]["id"], "bonus": "", "shipping_country": "CN"}
        again = await browser.post(f"/campaigns/{campaign['slug']}/back", data=form | {"action": "pledge"})
        assert again.status_code == 303, again.text
        assert ">Back again</a>" not in (await browser.get("/me/pledges?lang=en")).text


async def test_a_cancelled_pledge_does_not_offer_to_back_a_campaign_that_has_ended(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with new_browser(stripe_client) as browser:
        campaign, _token = await cancelled_pledge(stripe_client, sessions, browser)
        assert ">Back again</a>" in (await browser.get("/me/pledges")).text
        async with sessions.begin() as session:
            await session.execute(
                update(Campaign).where(Campaign.id == uuid.UUID(campaign["id"])).values(status="unsuccessful")
            )
        mine = await browser.get("/me/pledges")
        assert mine.status_code == 200 and ">Back again</a>" not in mine.text
