"""An account's language and time zone: set at sign-up, changed on the account page and by the API, and followed by
every page (when signed in) and every mail, with times shown on the reader's clock and mail greeting them by name."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Mail, User
from campaigns.preferences import offered_time_zones
from service.i18n import date, datetime_, use_locale, use_time_zone
from service.mail import Reader, deliver_mail, mail_templates, render_mail
from service.settings import Settings
from tests.browser import LiveServer, chromium_available, console_errors, launch_browser, screenshot
from tests.helpers import PASSWORD, Actor, Inbox, launched_campaign, sign_up
from tests.pages import csrf_from, logged_in, new_browser, post_form

DEADLINE = datetime(2026, 12, 20, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai


async def preferences_of(sessions: async_sessionmaker[AsyncSession], email: str) -> tuple[str, str]:
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == email))
    assert user is not None
    return user.locale, user.time_zone


async def set_by_api(client: httpx.AsyncClient, actor: Actor, **fields: str) -> httpx.Response:
    return await client.patch("/api/v1/me", json=fields, headers=actor.headers)


def parts_of(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


# The one format


def test_a_moment_is_written_once_the_same_way_with_its_zone_in_both_languages() -> None:
    with use_locale("en"), use_time_zone("Asia/Shanghai"):
        assert datetime_(DEADLINE) == "20 Dec 2026, 23:59 CST"
        assert datetime_(DEADLINE.isoformat()) == "20 Dec 2026, 23:59 CST", "mail facts carry ISO 8601 text"
        assert date(DEADLINE) == "20 Dec 2026"
    with use_locale("zh_CN"), use_time_zone("Asia/Shanghai"):
        assert datetime_(DEADLINE) == "2026年12月20日 23:59 CST"
        assert date(DEADLINE) == "2026年12月20日"
    with use_locale("en"):
        assert datetime_(DEADLINE) == "20 Dec 2026, 15:59 UTC", "nobody's zone known: UTC, and said so"
    with use_locale("zh_CN"), use_time_zone("Europe/Berlin"):
        assert datetime_(DEADLINE) == "2026年12月20日 16:59 CET"


def test_a_zone_without_letters_is_named_by_its_offset_and_the_day_follows_the_clock() -> None:
    with use_locale("en"), use_time_zone("Asia/Kathmandu"):
        assert datetime_(DEADLINE) == "20 Dec 2026, 21:44 UTC+5:45"
    with use_locale("en"), use_time_zone("Asia/Singapore"):
        assert datetime_(datetime(2026, 12, 20, 17, 30, tzinfo=UTC)) == "21 Dec 2026, 01:30 UTC+8"
        assert date(datetime(2026, 12, 20, 17, 30, tzinfo=UTC)) == "21 Dec 2026"
    with use_locale("en"), use_time_zone("America/New_York"):
        assert datetime_(DEADLINE) == "20 Dec 2026, 10:59 EST"


def test_the_account_page_offers_china_first_to_a_chinese_reader_and_keeps_a_zone_set_elsewhere() -> None:
    assert offered_time_zones("zh_CN")[0] == "Asia/Shanghai"
    assert offered_time_zones("en")[0] == "UTC" and "Asia/Shanghai" in offered_time_zones("en")
    assert offered_time_zones("en", "America/Argentina/Cordoba")[0] == "America/Argentina/Cordoba"


# The API


async def test_the_account_json_says_its_language_and_zone_and_patch_changes_them(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    lei = await sign_up(client, "Lei")
    me = (await client.get("/api/v1/me", headers=lei.headers)).json()
    assert (me["language"], me["time_zone"]) == ("en", "UTC")

    changed = await set_by_api(client, lei, language="zh_CN", time_zone="Asia/Shanghai")

    assert changed.status_code == 200, changed.text
    assert (changed.json()["language"], changed.json()["time_zone"]) == ("zh_CN", "Asia/Shanghai")
    assert await preferences_of(sessions, lei.email) == ("zh_CN", "Asia/Shanghai")
    only_zone = await set_by_api(client, lei, time_zone="Europe/Berlin")
    assert (only_zone.json()["language"], only_zone.json()["time_zone"]) == ("zh_CN", "Europe/Berlin")
    exported = (await client.get("/api/v1/me/export", headers=lei.headers)).json()["account"]
    assert (exported["locale"], exported["time_zone"]) == ("zh_CN", "Europe/Berlin")


async def test_a_bad_language_or_zone_is_422_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ada = await sign_up(client, "Ada")
    for fields, named in (
        ({"language": "fr"}, "language"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "asia/shanghai"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"language": "zh_CN", "time_zone": ""}, "time_zone"),
    ):
        answer = await set_by_api(client, ada, **fields)
        assert answer.status_code == 422, answer.text
        assert [error["field"] for error in answer.json()["errors"]] == [named], fields
    assert await preferences_of(sessions, ada.email) == ("en", "UTC")
    assert (await client.patch("/api/v1/me", json={"language": "zh_CN"})).status_code == 401


async def test_signing_up_by_api_may_give_the_language_and_zone(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    email = f"mei{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "梅", "language": "zh_CN", "time_zone": "Asia/Shanghai"}
    assert (await client.post("/api/v1/users", json=body)).status_code == 201
    assert await preferences_of(sessions, email) == ("zh_CN", "Asia/Shanghai")
    refused = await client.post("/api/v1/users", json=body | {"email": "x" + email, "time_zone": "Nowhere"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "time_zone"


# The pages


async def test_signing_up_on_the_page_keeps_its_language_and_the_zone_the_browser_told(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for zone, kept in (("Asia/Shanghai", "Asia/Shanghai"), ("Not/AZone", "UTC"), ("", "UTC")):
        email = f"lei{uuid.uuid4().hex[:8]}@example.com"
        async with new_browser(client) as browser:
            browser.headers["Accept-Language"] = "zh-CN,zh;q=0.9"
            form = await browser.get("/signup")
            assert 'name="time_zone"' in form.text and "/static/js/time_zone.js" in form.text
            answer = await post_form(
                browser,
                "/signup",
                {"name": "李雷", "email": email, "password": PASSWORD, "time_zone": zone},
                form_page="/signup",
            )
        assert answer.status_code == 303, answer.text
        assert await preferences_of(sessions, email) == ("zh_CN", kept)


async def test_the_account_page_changes_the_language_and_zone_and_the_pages_follow(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    lei = await sign_up(client, "Lei")
    async with logged_in(client, lei) as browser:
        page = await browser.get("/account")
        assert "Language and time zone" in page.text and '<option value="UTC" selected>' in page.text

        answer = await post_form(
            browser, "/account/preferences", {"language": "zh_CN", "time_zone": "Asia/Shanghai"}, form_page="/account"
        )

        assert answer.status_code == 303 and answer.headers["location"] == "/account?done=preferences#preferences"
        assert await preferences_of(sessions, lei.email) == ("zh_CN", "Asia/Shanghai")
        page = await browser.get("/account?done=preferences")
        assert page.headers["content-language"] == "zh-CN"
        assert '<html lang="zh-CN">' in page.text and "语言和时区" in page.text and "已保存" in page.text
        assert '<option value="Asia/Shanghai" selected>' in page.text
        # The example under the zone, and when this browser logged in and was last seen: on the account's clock.
        assert page.text.count(" CST") >= 3


async def test_a_bad_value_on_the_account_page_shows_the_form_again_and_changes_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ada = await sign_up(client, "Ada")
    async with logged_in(client, ada) as browser:
        for fields, named in (
            ({"language": "klingon", "time_zone": "UTC"}, "Choose a language from the list."),
            ({"language": "en", "time_zone": "Atlantis/Capital"}, "Choose a time zone from the list."),
        ):
            answer = await post_form(browser, "/account/preferences", fields, form_page="/account")
            assert answer.status_code == 422, answer.text
            assert named in answer.text and 'id="field-time_zone"' in answer.text
    assert await preferences_of(sessions, ada.email) == ("en", "UTC")


async def test_signed_in_pages_speak_the_accounts_language_and_show_deadlines_on_its_clock(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    ends_at = datetime.fromisoformat(campaign["ends_at"])
    mei = await sign_up(client, "Mei")
    assert (await set_by_api(client, mei, language="zh_CN", time_zone="Asia/Shanghai")).status_code == 200
    with use_locale("zh_CN"), use_time_zone("Asia/Shanghai"):
        in_shanghai = datetime_(ends_at)
    with use_locale("en"):
        in_utc = datetime_(ends_at)
    assert in_shanghai.endswith(" CST") and in_utc.endswith(" UTC")

    async with logged_in(client, mei) as browser:
        # An English browser (Accept-Language, cookie) still gets the account's language.
        browser.headers["Accept-Language"] = "en-US,en;q=0.9"
        browser.cookies.set("lang", "en")
        page = await browser.get(f"/campaigns/{campaign['slug']}")
        assert page.status_code == 200 and page.headers["content-language"] == "zh-CN"
        assert '<html lang="zh-CN">' in page.text and in_shanghai in page.text and in_utc not in page.text

    async with new_browser(client) as stranger:  # nobody signed in: UTC, said so
        page = await stranger.get(f"/campaigns/{campaign['slug']}")
        assert in_utc in page.text and in_shanghai not in page.text and '<html lang="en">' in page.text


async def test_the_language_switch_wins_and_becomes_the_accounts_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mei = await sign_up(client, "Mei")
    await set_by_api(client, mei, language="zh_CN", time_zone="Asia/Shanghai")
    async with logged_in(client, mei) as browser:
        assert '<html lang="zh-CN">' in (await browser.get("/account")).text

        switched = await browser.get("/account?lang=en")

        assert switched.headers["content-language"] == "en" and "Language and time zone" in switched.text
        assert await preferences_of(sessions, mei.email) == ("en", "Asia/Shanghai")
        browser.cookies.delete("lang")
        browser.headers["Accept-Language"] = "zh-CN"
        assert '<html lang="en">' in (await browser.get("/account")).text, "kept in the account, not the cookie"
    assert (await client.get("/api/v1/me", headers=mei.headers)).json()["language"] == "en"


async def test_the_account_page_and_its_form_are_for_the_signed_in_only(client: httpx.AsyncClient) -> None:
    async with logged_in(client, None) as browser:
        token = await csrf_from(browser, "/login")
        answer = await browser.post(
            "/account/preferences", data={"csrf_token": token, "language": "en", "time_zone": "UTC"}
        )
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


# Mail


async def test_a_mail_to_a_chinese_reader_in_shanghai_is_chinese_greets_them_and_shows_cst(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    lei = await sign_up(client, "李雷")
    assert (await set_by_api(client, lei, language="zh_CN", time_zone="Asia/Shanghai")).status_code == 200
    campaign, _maker, _operator = await launched_campaign(client, sessions, maker=lei)
    ends_at = datetime.fromisoformat(campaign["ends_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    async with sessions() as session:
        mail = await session.scalar(select(Mail).where(Mail.to_address == lei.email, Mail.kind == "campaign_launched"))
    assert mail is not None and mail.locale == "zh_CN"

    assert await deliver_mail(sessions, replace(settings, smtp_url=smtp_inbox.url), mail.id)

    [message] = smtp_inbox.messages
    text, html = parts_of(message)
    shown = f"{ends_at.year}年{ends_at.month}月{ends_at.day}日 {ends_at:%H:%M} CST"
    assert text.startswith("李雷，你好！") and "<p>李雷，你好！</p>" in html
    assert shown in text and shown in html and "UTC" not in text
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(message["Subject"]))


async def test_a_mail_greets_by_the_name_the_reader_has_now_or_neutrally_in_their_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings, smtp_inbox: Inbox
) -> None:
    facts = {"campaign_title": "Soil", "campaign_url": "https://k.example/c/soil", "ends_at": DEADLINE.isoformat()}
    nobody = Mail(kind="campaign_launched", to_address="x@example.com", locale="zh_CN", facts=facts)
    neutral = render_mail(mail_templates(dev=False), nobody, base_url="https://k.example")
    assert neutral.text.startswith("你好！") and "2026年12月20日 15:59 UTC" in neutral.text
    named = render_mail(
        mail_templates(dev=False), nobody, base_url="", reader=Reader(name="<b>Mei</b>", time_zone="Asia/Shanghai")
    )
    assert named.text.startswith("<b>Mei</b>，你好！") and "&lt;b&gt;Mei&lt;/b&gt;" in named.html
    assert "2026年12月20日 23:59 CST" in named.text

    ada = await sign_up(client, "Ada")
    await set_by_api(client, ada, time_zone="America/New_York")
    async with sessions.begin() as session:
        user = await session.scalar(select(User).where(User.email == ada.email))
        assert user is not None
        user.name = "Ada Lovelace"
        mail = Mail(kind="campaign_launched", user_id=user.id, to_address=ada.email, locale="en", facts=facts)
        session.add(mail)
    assert await deliver_mail(sessions, replace(settings, smtp_url=smtp_inbox.url), mail.id)
    text, _html = parts_of(smtp_inbox.messages[0])
    assert text.startswith("Hello Ada Lovelace,") and "20 Dec 2026, 10:59 EST" in text


# In Chromium

SHOTS = Path(os.environ.get("KINDLING_SCREENSHOTS", "/tmp/kindling-shots")) / "locale-prefs"


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="Chromium is not installed")
async def test_a_chinese_browser_in_shanghai_signs_up_into_its_language_and_zone_and_switches_on_the_account_page(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    base = live_server.url
    email = f"lei{uuid.uuid4().hex[:8]}@example.com"
    async with launch_browser() as browser:
        context = await browser.new_context(
            viewport={"width": 1280, "height": 800}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        page = await context.new_page()
        errors = console_errors(page)
        await page.goto(base + "/signup")
        await page.get_by_label("你的名字").fill("李雷")
        await page.get_by_label("邮箱").fill(email)
        await page.get_by_label("密码").fill(PASSWORD)
        await page.get_by_role("button", name="注册").click()
        await expect(page.get_by_role("button", name="退出登录", exact=True)).to_be_visible()
        assert await preferences_of(sessions, email) == ("zh_CN", "Asia/Shanghai"), "the script told the zone"

        await page.goto(base + "/account")
        await expect(page.get_by_label("时区", exact=True)).to_have_value("Asia/Shanghai")
        await expect(page.locator("#field-language")).to_have_value("zh_CN")
        await expect(page.get_by_text("CST").first).to_be_visible()
        for width in (1280, 390):
            await page.set_viewport_size({"width": width, "height": 844})
            await screenshot(page, SHOTS / f"account-{width}-zh.png")
            assert await page.evaluate("document.documentElement.scrollWidth") <= width

        await page.locator("#field-language").select_option("en")
        await page.get_by_label("时区", exact=True).select_option("Europe/Berlin")
        await page.get_by_role("button", name="保存", exact=True).click()
        await expect(page.get_by_text("Saved. Pages and mail now use your language and time zone.")).to_be_visible()
        await expect(page.get_by_label("Time zone", exact=True)).to_have_value("Europe/Berlin")
        await expect(page.get_by_text("CET").first).to_be_visible()
        for width in (1280, 390):
            await page.set_viewport_size({"width": width, "height": 844})
            await screenshot(page, SHOTS / f"account-{width}-en.png")
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
        await context.close()
        assert await preferences_of(sessions, email) == ("en", "Europe/Berlin")
        assert errors == []
