"""The site's first pages: home, sign-up, log-in, log-out, makerspaces, errors and /dev/mail, in both languages."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Mail, Pledge, User
from service.app import create_app
from service.pages import safe_next
from service.settings import Settings
from tests.browser import LiveServer, chromium_available, console_errors, launch_browser, new_page
from tests.helpers import PASSWORD, create_space, make_admin, sign_up
from tests.pages import CSRF_INPUT, csrf_from, new_browser

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


async def users_named(sessions: async_sessionmaker[AsyncSession], email: str) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(User).where(User.email == email)) or 0)


async def a_space(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], **fields: Any
) -> dict[str, Any]:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    return await create_space(client, admin, **fields)


async def a_live_campaign(
    sessions: async_sessionmaker[AsyncSession], space_id: str, *, title: str, pledged: int = 0, **fields: Any
) -> Campaign:
    """Written straight into the tables: the campaign workflow has its own tests; these pages only read."""
    async with sessions.begin() as session:
        maker = User(email=f"maker-{uuid.uuid4().hex[:8]}@example.com", name="Maker", password_hash="x")
        session.add(maker)
        await session.flush()
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "slug": re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"),
            "title": title,
            "summary": "A small thing that does one job well.",
            "currency": "CNY",
            "goal": 1_000_000,
            "space_id": uuid.UUID(space_id),
            "maker_id": maker.id,
            "duration_days": 30,
            "status": "live",
            "launched_at": now,
            "ends_at": now + timedelta(days=12, hours=3),
        }
        values.update(fields)
        campaign = Campaign(**values)
        session.add(campaign)
        await session.flush()
        if pledged:
            backer = User(email=f"backer-{uuid.uuid4().hex[:8]}@example.com", name="Backer", password_hash="x")
            session.add(backer)
            await session.flush()
            session.add(
                Pledge(
                    campaign_id=campaign.id,
                    backer_id=backer.id,
                    amount=pledged,
                    currency=campaign.currency,
                    status="active",
                )
            )
        return campaign


# Home


async def test_the_home_page_explains_kindling_and_shows_live_campaigns(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space = await a_space(client, sessions, name="Chaihuo x.factory")
    await a_live_campaign(sessions, space["id"], title="Pocket Oscilloscope", pledged=450_000)
    await a_live_campaign(sessions, space["id"], title="Quiet Draft", status="draft")

    english = await client.get("/")
    assert english.status_code == 200
    assert "vetted by makerspaces" in english.text
    assert "Pocket Oscilloscope" in english.text
    assert "Quiet Draft" not in english.text
    assert "Vetted by Chaihuo x.factory" in english.text
    assert "CN¥4,500" in english.text and "CN¥10,000" in english.text
    assert 'href="/campaigns/pocket-oscilloscope"' in english.text
    assert '<progress class="progress" max="100" value="45"' in english.text

    chinese = await client.get("/", headers=ZH)
    assert '<html lang="zh-CN">' in chinese.text
    assert "由创客空间把关的硬件众筹" in chinese.text
    assert "正在众筹" in chinese.text
    assert "¥4,500" in chinese.text and "CN¥" not in chinese.text
    assert "剩余天数" in chinese.text


async def test_the_home_page_says_so_when_nothing_is_live(client: httpx.AsyncClient, engine: object) -> None:
    english = await client.get("/")
    assert "No campaigns are live yet" in english.text
    assert 'href="/signup?next=%2Fmaker"' in english.text
    chinese = await client.get("/?lang=zh_CN")
    assert "目前还没有正在众筹的项目" in chinese.text


async def test_the_layout_is_accessible_and_loads_nothing_from_elsewhere(
    client: httpx.AsyncClient, engine: object
) -> None:
    page = (await client.get("/")).text
    assert '<a class="skip-link" href="#main">' in page
    assert '<main id="main"' in page and "<header" in page and "<footer" in page
    assert 'aria-label="Main"' in page and 'aria-label="Language"' in page
    assert 'href="/static/site.css"' in page
    assert "style=" not in page and "<script" not in page
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
    assert "English" in page and "简体中文" in page
    css = await client.get("/static/site.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "http" not in css.text.split("*/", 1)[1]


# Sign-up


async def test_signing_up_through_the_form_logs_in_and_goes_on(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await csrf_from(client, "/signup?next=/spaces")
    response = await client.post(
        "/signup",
        data={
            "csrf_token": token,
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "password": PASSWORD,
            "next": "/spaces",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/spaces"
    cookie = response.headers["set-cookie"].lower()
    assert "kindling_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie

    home = await client.get("/")
    assert "Ada Lovelace" in home.text
    assert 'action="/logout"' in home.text
    assert 'href="/me/pledges"' in home.text and 'href="/operator"' not in home.text
    assert await users_named(sessions, "ada@example.com") == 1


async def test_a_sign_up_without_the_csrf_token_is_refused_and_saves_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await csrf_from(client, "/signup")
    body = {"name": "Mallory", "email": "mallory@example.com", "password": PASSWORD}
    missing = await client.post("/signup", data=body)
    assert missing.status_code == 403
    assert "You can't do that here" in missing.text
    forged = await client.post("/signup", data={**body, "csrf_token": "forged"})
    assert forged.status_code == 403
    assert await users_named(sessions, "mallory@example.com") == 0


async def test_bad_sign_up_input_is_shown_beside_each_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await csrf_from(client, "/signup")
    response = await client.post(
        "/signup", data={"csrf_token": token, "name": "", "email": "not-an-email", "password": "short"}
    )
    assert response.status_code == 422
    page = response.text
    assert 'id="field-name-error"' in page and "This field is required." in page
    assert 'id="field-email-error"' in page and "Enter a valid email address" in page
    assert 'id="field-password-error"' in page and "Use at least 10 characters." in page
    assert 'value="not-an-email"' in page
    assert 'value="short"' not in page
    assert 'aria-invalid="true"' in page

    token = await csrf_from(client, "/signup")
    chinese = await client.post(
        "/signup?lang=zh_CN", data={"csrf_token": token, "name": "小明", "email": "x@example.com", "password": "short"}
    )
    assert "至少需要 10 个字符。" in chinese.text
    assert 'value="小明"' in chinese.text
    assert await users_named(sessions, "x@example.com") == 0


async def test_an_email_already_taken_is_said_beside_the_email(client: httpx.AsyncClient) -> None:
    await sign_up(client, email="grace@example.com")
    token = await csrf_from(client, "/signup")
    response = await client.post(
        "/signup", data={"csrf_token": token, "name": "Grace", "email": "GRACE@example.com", "password": PASSWORD}
    )
    assert response.status_code == 409
    assert 'id="field-email-error"' in response.text
    assert "An account with this email exists already." in response.text


# Log-in and log-out


async def test_logging_in_and_out_through_the_forms(client: httpx.AsyncClient) -> None:
    await sign_up(client, "Linus", email="linus@example.com")
    token = await csrf_from(client, "/login")
    response = await client.post(
        "/login", data={"csrf_token": token, "email": "Linus@Example.com", "password": PASSWORD, "next": "/spaces"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/spaces"
    assert "httponly" in response.headers["set-cookie"].lower()

    home = await client.get("/")
    assert "Linus" in home.text
    new_token = CSRF_INPUT.search(home.text)
    assert new_token and new_token.group(1) != token, "logging in gives the session a new CSRF token"

    refused = await client.post("/logout", data={})
    assert refused.status_code == 403
    assert "Linus" in (await client.get("/")).text

    assert (await client.get("/logout")).status_code == 405
    out = await client.post("/logout", data={"csrf_token": new_token.group(1)})
    assert out.status_code == 303 and out.headers["location"] == "/"
    after = await client.get("/")
    assert "Linus" not in after.text and 'href="/login"' in after.text


async def test_a_wrong_password_reshows_the_log_in_form(client: httpx.AsyncClient) -> None:
    await sign_up(client, email="hopper@example.com")
    token = await csrf_from(client, "/login")
    response = await client.post(
        "/login", data={"csrf_token": token, "email": "hopper@example.com", "password": "wrong wrong wrong"}
    )
    assert response.status_code == 401
    assert "The email or the password is wrong." in response.text
    assert 'value="hopper@example.com"' in response.text and "wrong wrong wrong" not in response.text
    empty = await client.post("/login", data={"csrf_token": token, "email": "", "password": ""})
    assert empty.status_code == 422
    assert 'id="field-email-error"' in empty.text and 'id="field-password-error"' in empty.text


async def test_repeated_failed_log_ins_are_slowed_down_with_the_wait_shown(client: httpx.AsyncClient) -> None:
    await sign_up(client, email="target@example.com")
    token = await csrf_from(client, "/login")
    form = {"csrf_token": token, "email": "target@example.com", "password": "guess guess"}
    statuses = [(await client.post("/login", data=form)).status_code for _ in range(10)]
    assert statuses == [401] * 10
    throttled = await client.post("/login", data={**form, "password": PASSWORD})
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    # The first delay past the free attempts is a minute; each further one doubles (tests/test_login_throttle.py).
    assert "Please wait 1 minute and try again." in throttled.text
    chinese = await client.post("/login?lang=zh_CN", data=form)
    assert chinese.status_code == 429 and "请等待 1 分钟后再试" in chinese.text


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "http:/x", " /spaces"],
)
async def test_log_in_goes_only_to_a_page_of_this_site(client: httpx.AsyncClient, target: str) -> None:
    user = await sign_up(client, email="safe@example.com")
    token = await csrf_from(client, "/login")
    response = await client.post(
        "/login", data={"csrf_token": token, "email": user.email, "password": PASSWORD, "next": target}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_safe_next_keeps_local_paths_with_their_query() -> None:
    assert safe_next("/campaigns/lamp?tier=2#rewards") == "/campaigns/lamp?tier=2#rewards"
    assert safe_next(None) == "/"
    assert safe_next("/\tevil") == "/"


async def test_the_session_cookie_is_secure_on_an_https_site(
    settings: Settings, engine: object, client: httpx.AsyncClient
) -> None:
    app = create_app(replace(settings, base_url="https://kindling.example"), engine_pool=2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://kindling.example") as secure:
            page = await secure.get("/login")
    cookie = page.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


async def test_the_navigation_shows_the_review_queue_to_operators_only(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await sign_up(client, "Olga", email="olga@example.com")
    named = await client.post(
        f"/api/v1/spaces/{space['id']}/operators", json={"email": operator.email}, headers=admin.headers
    )
    assert named.status_code == 201
    await sign_up(client, "Bob", email="bob@example.com")

    async def nav_for(email: str) -> str:
        async with new_browser(client) as browser:
            token = await csrf_from(browser, "/login")
            await browser.post("/login", data={"csrf_token": token, "email": email, "password": PASSWORD})
            return (await browser.get("/spaces")).text

    assert 'href="/operator"' in await nav_for("olga@example.com")
    assert 'href="/operator"' not in await nav_for("bob@example.com")
    assert 'href="/spaces" aria-current="page"' in await nav_for("bob@example.com")


# Makerspaces


async def test_all_spaces_are_listed_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await a_space(client, sessions, name="Chaihuo x.factory", city="Shenzhen", country="CN", sponsor_fee_bps=350)
    response = await client.get("/spaces")
    assert response.status_code == 200
    page = response.text
    assert "Chaihuo x.factory" in page and "Shenzhen, China" in page and "Sponsor fee 3.5%" in page
    chinese = (await client.get("/spaces", headers=ZH)).text
    assert "中国 Shenzhen" in chinese and "赞助费率 3.5%" in chinese


async def test_a_space_page_shows_its_story_and_its_live_campaigns(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space = await a_space(client, sessions, name="Noisebridge", city="San Francisco", country="US", slug="noisebridge")
    other = await a_space(client, sessions, name="Elsewhere")
    await a_live_campaign(sessions, space["id"], title="Synth Kit", currency="USD", goal=500_000, pledged=120_000)
    await a_live_campaign(sessions, other["id"], title="Other Thing")

    page = await client.get("/spaces/noisebridge")
    assert page.status_code == 200
    assert "Noisebridge" in page.text and "San Francisco, United States" in page.text
    assert "Where makers meet factories." in page.text
    assert "Synth Kit" in page.text and "$1,200" in page.text and "Other Thing" not in page.text
    chinese = await client.get("/spaces/noisebridge?lang=zh_CN")
    assert "美国 San Francisco" in chinese.text and "US$1,200" in chinese.text

    missing = await client.get("/spaces/nowhere", headers=ZH)
    assert missing.status_code == 404
    assert "找不到这个页面" in missing.text


async def test_an_empty_list_of_spaces_says_so(client: httpx.AsyncClient, engine: object) -> None:
    assert "No makerspaces yet" in (await client.get("/spaces")).text
    assert "还没有创客空间" in (await client.get("/spaces", headers=ZH)).text


# Errors


async def test_error_pages_are_friendly_in_both_languages(client: httpx.AsyncClient, engine: object) -> None:
    english = await client.get("/no/such/page")
    assert english.status_code == 404
    assert "We can't find that page" in english.text and 'href="/static/site.css"' in english.text
    chinese = await client.get("/no/such/page", headers=ZH)
    assert "找不到这个页面" in chinese.text and "返回首页" in chinese.text
    assert (await client.get("/spaces?cursor=garbage")).status_code == 422


# /dev/mail


@pytest.fixture
async def mails(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[list[Mail]]:
    async with sessions.begin() as session:
        older = Mail(
            kind="welcome",
            to_address="ada@example.com",
            locale="en",
            facts={"name": "Ada"},
            subject="Welcome to Kindling, Ada",
            text_body="Hello Ada,\nYour account is ready.",
            html_body='<p style="color:#c2410c">Hello <b>Ada</b></p><script>alert(1)</script>',
            created_at=datetime.now(UTC) - timedelta(minutes=5),
            sent_at=datetime.now(UTC),
        )
        newer = Mail(kind="pledge_confirmed", to_address="bob@example.com", locale="zh_CN", facts={"amount": 100})
        session.add_all([older, newer])
    yield [older, newer]


async def test_dev_mail_lists_mail_newest_first_and_shows_each_one(
    client: httpx.AsyncClient, mails: list[Mail]
) -> None:
    older, newer = mails
    listing = await client.get("/dev/mail")
    assert listing.status_code == 200
    assert listing.text.index("bob@example.com") < listing.text.index("ada@example.com")
    assert "Welcome to Kindling, Ada" in listing.text and "Delivered" in listing.text and "Waiting" in listing.text

    detail = await client.get(f"/dev/mail/{older.id}")
    assert detail.status_code == 200
    assert "Hello Ada,\nYour account is ready." in detail.text
    assert "<script>alert(1)</script>" not in detail.text
    assert f'<iframe class="mail-frame" sandbox src="/dev/mail/{older.id}/html"' in detail.text

    html = await client.get(f"/dev/mail/{older.id}/html")
    assert html.status_code == 200 and "<b>Ada</b>" in html.text
    policy = html.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "frame-ancestors 'self'" in policy

    pending = await client.get(f"/dev/mail/{newer.id}?lang=zh_CN")
    assert "后台任务还没有生成这封邮件" in pending.text and "&#34;amount&#34;: 100" in pending.text
    assert (await client.get(f"/dev/mail/{newer.id}/html")).status_code == 404
    assert (await client.get(f"/dev/mail/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/dev/mail/not-an-id")).status_code == 404


async def test_dev_mail_does_not_exist_outside_dev(settings: Settings, mails: list[Mail]) -> None:
    app = create_app(replace(settings, dev=False), engine_pool=2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as production:
            assert (await production.get("/dev/mail")).status_code == 404
            assert (await production.get(f"/dev/mail/{mails[0].id}")).status_code == 404
            assert (await production.get("/")).status_code == 200


# In a real browser


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_visitor_signs_up_in_a_real_browser_without_a_console_error(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with launch_browser() as browser, new_page(browser, width=375, locale="zh-CN") as page:
        errors = console_errors(page)
        await page.goto(live_server.url + "/")
        assert await page.locator("h1").inner_text() == "创客空间把关，放心支持硬件创客。"
        await page.get_by_role("link", name="注册").first.click()
        await page.get_by_label("你的名字").fill("小红")
        await page.get_by_label("邮箱").fill("xiaohong@example.com")
        await page.get_by_label("密码").fill("short")
        await page.get_by_role("button", name="注册").click()
        assert await page.locator("#field-password-error").inner_text() == "至少需要 10 个字符。"
        assert errors == ["Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"]
        errors.clear()
        await page.get_by_label("密码").fill(PASSWORD)
        await page.get_by_role("button", name="注册").click()
        await page.wait_for_url(live_server.url + "/")
        assert await page.locator(".account-name").count() == 1
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.className") == "skip-link"
        assert errors == []
    assert await users_named(sessions, "xiaohong@example.com") == 1
