"""Makers' texts and operators' notes say which language they are written in, and a maker may give the campaign's and
an update's texts in the other language too: readers see the version in their language when there is one, otherwise
the original, marked with `lang` and a small "written in ..." note."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import CampaignEvent
from tests.helpers import CHECKLIST_ALL_TRUE, Actor, add_product, add_tier, create_campaign, launched_campaign, sign_up
from tests.pages import logged_in, post_form
from tests.test_campaign_pages import a_space_with_operator

CHINESE_DRAFT: dict[str, Any] = {
    "title": "稻田卫士",
    "summary": "给稻田用的水位传感器。",
    "description": "## 传感器\n\n告诉你**何时**放水。",
    "language": "zh_CN",
    "translations": {"en": {"title": "Paddy Guard", "description": "## The sensor\n\nIt tells you **when** to flood."}},
}


def field_of(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [error["field"] for error in response.json()["errors"]]


async def test_a_campaign_keeps_its_language_and_the_makers_version_in_the_other(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    draft = await create_campaign(client, maker, space, **CHINESE_DRAFT)

    assert draft["language"] == "zh_CN"
    assert draft["translations"] == {
        "en": {
            "title": "Paddy Guard",
            "description": "## The sensor\n\nIt tells you **when** to flood.",
            "description_html": "<h2>The sensor</h2>\n<p>It tells you <strong>when</strong> to flood.</p>\n",
        }
    }
    product = await add_product(client, maker, draft)
    tier = await add_tier(client, maker, draft)
    english_tier = await add_tier(client, maker, draft, title="Two", language="en")
    assert (product["language"], tier["language"], english_tier["language"]) == ("zh_CN", "zh_CN", "en")

    patched = await client.patch(
        f"/api/v1/campaigns/{draft['id']}",
        json={"translations": {"en": {"summary": "A water-level sensor for rice paddies."}}},
        headers=maker.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["translations"] == {"en": {"summary": "A water-level sensor for rice paddies."}}
    english = await create_campaign(client, maker, space)
    assert english["language"] == "en" and english["translations"] == {}


async def test_an_unknown_language_is_refused_naming_the_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    draft = await create_campaign(client, maker, space)
    base = f"/api/v1/campaigns/{draft['id']}"
    body = {"title": "T", "summary": "S", "currency": "CNY", "goal": 100, "space_id": space["id"], "duration_days": 9}

    assert field_of(await client.post("/api/v1/campaigns", json=body | {"language": "fr"}, headers=maker.headers)) == [
        "language"
    ]
    refused = await client.post(
        "/api/v1/campaigns", json=body | {"translations": {"fr": {"title": "Le"}}}, headers=maker.headers
    )
    assert field_of(refused) == ["translations"] and "'fr'" in refused.json()["errors"][0]["message"]
    assert field_of(await client.patch(base, json={"language": "de"}, headers=maker.headers)) == ["language"]
    product = {"sku": "X", "name": "X", "weight_grams": 1, "batch_size": 1, "language": "ja"}
    assert field_of(await client.post(f"{base}/products", json=product, headers=maker.headers)) == ["language"]
    listed = await client.get("/api/v1/campaigns", params={"maker_id": maker.id}, headers=maker.headers)
    assert [c["id"] for c in listed.json()["items"]] == [draft["id"]]  # nothing was made


def lang_of(html: str, text: str) -> str | None:
    """The `lang` on the element that holds `text` (None: the page's own)."""
    match = re.search(r"<(\w+)([^>]*)>[^<]*" + re.escape(text), html)
    assert match, text
    found = re.search(r'lang="([^"]+)"', match.group(2))
    return found.group(1) if found else None


async def test_readers_see_their_language_where_the_maker_gave_it_and_the_original_marked_elsewhere(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions, **CHINESE_DRAFT)
    page = f"/campaigns/{campaign['slug']}"

    english = (await client.get(f"{page}?lang=en")).text
    chinese = (await client.get(f"{page}?lang=zh_CN")).text

    assert "<h1>Paddy Guard</h1>" in english and "稻田卫士</h1>" not in english
    assert "It tells you <strong>when</strong> to flood." in english
    assert lang_of(english, "给稻田用的水位传感器。") == "zh-CN"  # no English summary: the original, marked
    assert "written in Chinese" in english
    assert "<h1>稻田卫士</h1>" in chinese and "告诉你<strong>何时</strong>放水。" in chinese
    assert lang_of(chinese, "给稻田用的水位传感器。") is None and "原文为中文" not in chinese
    discover = (await client.get("/campaigns?lang=en")).text
    assert "Paddy Guard" in discover and lang_of(discover, "给稻田用的水位传感器。") == "zh-CN"


async def test_an_update_in_english_with_a_chinese_title_reads_as_given(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions)
    posted = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/updates",
        json={
            "title": "Boards arrived",
            "body": "All **300** boards passed.",
            "translations": {"zh_CN": {"title": "电路板到了"}},
        },
        headers=maker.headers,
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["language"] == "en" and posted.json()["translations"] == {"zh_CN": {"title": "电路板到了"}}
    refused = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/updates",
        json={"title": "T", "body": "B", "language": "xx"},
        headers=maker.headers,
    )
    assert field_of(refused) == ["language"]

    chinese = (await client.get(f"/campaigns/{campaign['slug']}?lang=zh_CN")).text

    assert "电路板到了" in chinese and "Boards arrived" not in chinese
    assert re.search(r'<div class="prose" lang="en">\s*<p>All <strong>300</strong> boards passed.', chinese)
    assert "原文为英文" in chinese


async def operator_reviews(client: httpx.AsyncClient, operator: Actor, campaign: dict[str, Any], **body: Any) -> None:
    reviewed = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/review",
        json={"decision": "request_changes", "notes": "请补充认证计划。", "checklist": CHECKLIST_ALL_TRUE} | body,
        headers=operator.headers,
    )
    assert reviewed.status_code == 200, reviewed.text


async def test_review_notes_and_a_suspension_reason_record_their_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    draft = await create_campaign(client, maker, space)
    await add_product(client, maker, draft)
    await add_tier(client, maker, draft)
    assert (await client.post(f"/api/v1/campaigns/{draft['id']}/submit", headers=maker.headers)).status_code == 200
    refused = await client.post(
        f"/api/v1/campaigns/{draft['id']}/review",
        json={"decision": "reject", "notes": "n", "language": "klingon"},
        headers=operator.headers,
    )
    assert field_of(refused) == ["language"]
    await operator_reviews(client, operator, draft, language="zh_CN")

    reviews = await client.get(f"/api/v1/campaigns/{draft['id']}/reviews", headers=maker.headers)
    assert [r["language"] for r in reviews.json()["items"]] == ["zh_CN"]
    async with logged_in(client, maker) as browser:
        page = (await browser.get(f"/maker/campaigns/{draft['slug']}?lang=en")).text
    assert lang_of(page, "请补充认证计划。") == "zh-CN" and "written in Chinese" in page

    live, _maker, live_operator = await launched_campaign(client, sessions)
    suspend = f"/api/v1/campaigns/{live['id']}/suspend"
    assert field_of(await client.post(suspend, json={"reason": "r", "language": "zz"}, headers=live_operator.headers))
    suspended = await client.post(
        suspend, json={"reason": "样品未通过安全测试。", "language": "zh_CN"}, headers=live_operator.headers
    )
    assert suspended.status_code == 200, suspended.text
    async with sessions() as session:
        event = await session.scalar(select(CampaignEvent).where(CampaignEvent.action == "suspend"))
    assert event is not None and (event.note, event.language) == ("样品未通过安全测试。", "zh_CN")


async def test_the_campaign_form_takes_the_language_and_the_other_languages_version(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    form = {
        "title": "稻田卫士",
        "summary": "给稻田用的水位传感器。",
        "description": "",
        "language": "zh_CN",
        "other_title": "Paddy Guard",
        "other_summary": "",
        "other_description": "",
        "currency": "CNY",
        "goal": "1000",
        "space_id": space["id"],
        "duration_days": "30",
    }
    async with logged_in(client, maker) as browser:
        bad = await post_form(browser, "/maker/new", form | {"language": "fr"}, form_page="/maker/new")
        assert bad.status_code == 422 and "Choose English or Chinese." in bad.text
        saved = await post_form(browser, "/maker/new", form, form_page="/maker/new")
        assert saved.status_code == 303, saved.text
        slug = saved.headers["location"].split("/")[3].split("?")[0]
        edit = (await browser.get(f"/maker/campaigns/{slug}/edit")).text
        assert 'value="Paddy Guard"' in edit and '<option value="zh_CN" selected' in edit

    detail = (await client.get(f"/api/v1/campaigns/{slug}", headers=maker.headers)).json()
    assert detail["language"] == "zh_CN" and detail["translations"] == {"en": {"title": "Paddy Guard"}}


async def test_the_update_form_takes_the_update_in_the_other_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(client, sessions, **CHINESE_DRAFT)
    manage = f"/maker/campaigns/{campaign['slug']}"
    form = {"title": "电路板到了", "body": "三百块板子全部通过测试。", "visibility": "public", "language": "zh_CN"}

    async with logged_in(client, maker) as browser:
        page = (await browser.get(manage)).text
        assert '<input type="hidden" name="language" value="zh_CN">' in page
        posted = await post_form(
            browser, f"{manage}/updates", form | {"other_title": "Boards arrived", "other_body": ""}, form_page=manage
        )
        assert posted.status_code == 303, posted.text

    listed = await client.get(f"/api/v1/campaigns/{campaign['id']}/updates")
    [update] = listed.json()["items"]
    assert update["language"] == "zh_CN" and update["translations"] == {"en": {"title": "Boards arrived"}}
    english = (await client.get(f"/campaigns/{campaign['slug']}?lang=en")).text
    assert "Boards arrived" in english and "电路板到了" not in english
