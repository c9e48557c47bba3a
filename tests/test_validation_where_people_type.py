"""Validation where makers type: a tier's products, its delivery month, its shipping countries and money, the image
limit, and the goal against one factory batch; through the API and through the pages, in English and Chinese."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.catalog import draft_deadline, earliest_delivery
from campaigns.images import MAX_IMAGE_BYTES
from campaigns.models import Tier
from service.app import BODY_LIMIT
from service.pages.campaign_forms import typed_month
from tests.helpers import (
    DELIVERY,
    add_product,
    add_tier,
    create_campaign,
    launched_campaign,
    sign_up,
)
from tests.test_campaign_pages import a_space_with_operator, count, csrf_from, logged_in, png, post_form
from tests.test_checkout_pages import log_in

TODAY_PLUS_30 = earliest_delivery(draft_deadline(30, date.today()))
ONE_ITEM = [{"sku": "SKU-A", "quantity": 1}]


def fields_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def month_before(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


# Rules on plain values


def test_the_earliest_delivery_is_the_month_after_the_deadline() -> None:
    assert earliest_delivery(date(2027, 1, 5)) == "2027-02"
    assert earliest_delivery(date(2027, 1, 31)) == "2027-02"
    assert earliest_delivery(date(2026, 12, 31)) == "2027-01"
    assert draft_deadline(30, date(2026, 12, 6)) == date(2027, 1, 5)


def test_a_month_typed_without_a_picker_is_read_as_yyyy_mm() -> None:
    assert typed_month("2027-03") == "2027-03"
    assert typed_month(" 2027-3 ") == "2027-03"
    assert typed_month("2027/03") == "2027-03"
    assert typed_month("２０２７年３月") == "2027-03"
    assert typed_month("2027-13") == "2027-13"  # left as typed: the model refuses it with the field's message
    assert typed_month("March") == "March"


# The API


async def test_the_api_refuses_a_tier_without_products_naming_items(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space)
    await add_product(client, maker, campaign)
    tiers = f"/api/v1/campaigns/{campaign['id']}/tiers"
    body = {"title": "Empty box", "price": 19_900, "estimated_delivery": DELIVERY}
    assert set(fields_of(await client.post(tiers, json=body, headers=maker.headers))) == {"items"}
    empty = await client.post(tiers, json={**body, "items": []}, headers=maker.headers)
    assert set(fields_of(empty)) == {"items"}
    tier = await add_tier(client, maker, campaign)
    emptied = await client.patch(f"{tiers}/{tier['id']}", json={"items": []}, headers=maker.headers)
    assert set(fields_of(emptied)) == {"items"}
    assert await count(sessions, Tier) == 1


async def test_the_api_refuses_a_delivery_before_the_deadline_naming_the_earliest_month(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space, duration_days=60)
    await add_product(client, maker, campaign)
    earliest = earliest_delivery(draft_deadline(60, date.today()))
    tiers = f"/api/v1/campaigns/{campaign['id']}/tiers"
    body = {"title": "Soon", "price": 19_900, "items": ONE_ITEM, "estimated_delivery": month_before(earliest)}
    refused = fields_of(await client.post(tiers, json=body, headers=maker.headers))
    assert set(refused) == {"estimated_delivery"} and f"{earliest} at the earliest" in refused["estimated_delivery"]

    tier = await add_tier(client, maker, campaign, estimated_delivery=earliest)
    assert tier["estimated_delivery"] == earliest
    moved = await client.patch(
        f"{tiers}/{tier['id']}", json={"estimated_delivery": month_before(earliest)}, headers=maker.headers
    )
    assert set(fields_of(moved)) == {"estimated_delivery"}
    assert await count(sessions, Tier) == 1


# The tier form


async def tier_page(browser: httpx.AsyncClient, slug: str, form: dict[str, Any], *, lang: str = "en") -> httpx.Response:
    path = f"/maker/campaigns/{slug}/tiers/new"
    return await post_form(browser, f"{path}?lang={lang}", form, form_page=path)


GOOD_TIER = {
    "title": "Early bird",
    "description": "",
    "price": "149",
    "limit": "limited",
    "quantity_limit": "100",
    "estimated_delivery": DELIVERY,
    "items-0-sku": "SKU-A",
    "items-0-quantity": "2",
    "shipping-0-country": "CN",
    "shipping-0-fee": "10",
    "shipping-1-country": "*",
    "shipping-1-fee": "80.50",
}


async def test_the_tier_form_asks_for_a_product_a_later_month_and_says_money_limits(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space)
    await add_product(client, maker, campaign)
    slug = campaign["slug"]
    async with logged_in(client, maker) as browser:
        no_items = {key: value for key, value in GOOD_TIER.items() if not key.startswith("items-")}
        page = await tier_page(browser, slug, no_items)
        assert page.status_code == 422
        assert 'id="items-error"' in page.text and "Choose at least one product for this tier" in page.text

        early = await tier_page(browser, slug, {**GOOD_TIER, "estimated_delivery": month_before(TODAY_PLUS_30)})
        assert early.status_code == 422 and 'id="field-estimated_delivery-error"' in early.text
        year, month = TODAY_PLUS_30.split("-")
        english_month = date(int(year), int(month), 1).strftime("%B %Y")
        assert f"Choose {english_month} or later" in early.text, re.findall(r"field-error[^<]*<", early.text)
        chinese = await tier_page(
            browser, slug, {**GOOD_TIER, "estimated_delivery": month_before(TODAY_PLUS_30)}, lang="zh_CN"
        )
        assert f"{int(year)}年{int(month)}月" in chinese.text and "或更晚" in chinese.text
        assert f'min="{TODAY_PLUS_30}"' in chinese.text and 'type="month"' in chinese.text
        assert f"支持者预计收到的月份：{int(year)}年{int(month)}月 或更晚" in chinese.text
        assert f"The month backers can expect it: {english_month} or later" in early.text

        negative = await tier_page(browser, slug, {**GOOD_TIER, "price": "-5", "shipping-0-fee": "-1"})
        assert negative.status_code == 422 and negative.text.count("This cannot be negative") == 2
        dear = await tier_page(browser, slug, {**GOOD_TIER, "price": "70000.01"})
        assert "Enter at most CN¥70,000.00, the most one pledge may come to." in dear.text
        huge_fee = await tier_page(browser, slug, {**GOOD_TIER, "shipping-0-fee": "99999999999"})
        assert 'id="shipping-0-fee-error"' in huge_fee.text and "Enter at most CN¥10,000,000,000.00." in huge_fee.text
        assert await count(sessions, Tier) == 0

        typed = await tier_page(browser, slug, {**GOOD_TIER, "estimated_delivery": "2027/6"})
        assert typed.status_code == 303, typed.text
    tier = (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()["tiers"][0]
    assert tier["estimated_delivery"] == "2027-06" and tier["items"] == [{"sku": "SKU-A", "quantity": 2}]
    assert tier["shipping"] == [{"country": "CN", "fee": 1_000}, {"country": "*", "fee": 8_050}]


async def test_shipping_countries_are_chosen_from_a_list_in_the_pages_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space)
    await add_product(client, maker, campaign)
    form = f"/maker/campaigns/{campaign['slug']}/tiers/new"
    async with logged_in(client, maker) as browser:
        english = (await browser.get(f"{form}?lang=en")).text
        assert '<select id="shipping-0-country" name="shipping-0-country"' in english
        assert '<option value="*">Everywhere else</option>' in english
        assert '<option value="DE">Germany</option>' in english and 'list="country-list"' not in english
        chinese = (await browser.get(f"{form}?lang=zh_CN")).text
        assert '<option value="DE">德国</option>' in chinese and '<option value="*">其他国家和地区</option>' in chinese
        assert '<script src="/static/js/tier_rows.js" defer></script>' in chinese

        atlantis = await tier_page(browser, campaign["slug"], {**GOOD_TIER, "shipping-0-country": "Atlantis"})
        assert 'id="shipping-0-country-error"' in atlantis.text
        assert "Choose a country from the list, or everywhere else." in atlantis.text


async def test_more_rows_without_javascript_keeps_every_typed_value(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space)
    await add_product(client, maker, campaign)
    async with logged_in(client, maker) as browser:
        page = await tier_page(browser, campaign["slug"], {**GOOD_TIER, "description": "Be first.", "more_rows": "1"})
        assert page.status_code == 200 and "field-error" not in page.text
        html = page.text
        assert 'value="Early bird"' in html and ">Be first.</textarea>" in html and 'value="149"' in html
        assert 'id="limit-limited" name="limit" type="radio" value="limited" checked' in html
        assert 'value="100"' in html and 'value="2027-06"' in html
        assert '<option value="SKU-A" selected>' in html and 'name="items-0-quantity"' in html and 'value="2"' in html
        assert '<option value="CN" selected>' in html and '<option value="*" selected>' in html
        assert 'value="10"' in html and 'value="80.50"' in html
        assert 'name="items-4-sku"' in html and 'name="shipping-5-country"' in html
    assert await count(sessions, Tier) == 0


# Images: one limit


async def test_an_image_over_the_limit_is_answered_by_the_page_with_its_form_in_the_readers_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space)
    manage = f"/maker/campaigns/{campaign['slug']}"
    async with logged_in(client, maker) as browser:
        page = (await browser.get(manage)).text
        assert f'data-max-bytes="{MAX_IMAGE_BYTES}"' in page and "at most 5 MB" in page
        assert '<script src="/static/js/image_upload.js" defer></script>' in page

        token = await csrf_from(browser, manage)
        over_image = png() + b"\0" * MAX_IMAGE_BYTES
        assert len(over_image) < BODY_LIMIT
        refused = await browser.post(
            f"{manage}/images",
            data={"csrf_token": token, "role": "cover"},
            files={"file": ("big.png", over_image, "image/png")},
        )
        assert refused.status_code == 422 and "image of at most 5 MB" in refused.text

        over_body = png() + b"\0" * BODY_LIMIT
        for lang, words in (("en", "image of at most 5 MB"), ("zh_CN", "5 MB")):
            refused = await browser.post(
                f"{manage}/images?lang={lang}",
                data={"csrf_token": token, "role": "cover"},
                files={"file": ("huge.png", over_body, "image/png")},
            )
            assert refused.status_code == 413
            assert 'id="field-file-error"' in refused.text and words in refused.text
            assert '<link rel="stylesheet" href="/static/site.css' in refused.text
            assert 'enctype="multipart/form-data"' in refused.text
        assert "8 MB" not in refused.text


# The goal against one factory batch


async def test_the_maker_is_warned_when_the_goal_cannot_pay_for_one_batch_and_the_review_shows_the_sum(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    # CN¥1,000.00 goal; 500 units of SKU-A at CN¥30.00 and 200 of SKU-B at CN¥12.50 come to CN¥17,500.00.
    campaign = await create_campaign(client, maker, space, goal=100_000)
    await add_product(client, maker, campaign)
    await add_product(client, maker, campaign, sku="SKU-B", name="Gateway", unit_cost=1_250, batch_size=200)
    await add_product(client, maker, campaign, sku="SKU-C", name="Sticker", unit_cost=None, batch_size=1000)
    await add_tier(client, maker, campaign)
    edit = f"/maker/campaigns/{campaign['slug']}/edit"
    async with logged_in(client, maker) as browser:
        page = (await browser.get(edit)).text
        assert "data-batch-warning" in page
        assert "The goal, CN¥1,000.00, cannot pay for one factory batch" in page and "CN¥17,500.00" in page
        assert "= CN¥15,000.00" in page and "= CN¥2,500.00" in page and "Sticker" not in page
        chinese = (await browser.get(f"{edit}?lang=zh_CN")).text
        assert "data-batch-warning" in chinese and "目标金额 ¥1,000.00 不够" in chinese and "¥17,500.00" in chinese

    raised = await client.patch(f"/api/v1/campaigns/{campaign['id']}", json={"goal": 2_000_000}, headers=maker.headers)
    assert raised.status_code == 200, raised.text
    async with logged_in(client, maker) as browser:
        assert "data-batch-warning" not in (await browser.get(edit)).text
    await client.patch(f"/api/v1/campaigns/{campaign['id']}", json={"goal": 100_000}, headers=maker.headers)
    assert (await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)).status_code == 200

    async with logged_in(client, operator) as browser:
        review = (await browser.get(f"/operator/campaigns/{campaign['slug']}")).text
    assert "Can the goal pay for one batch?" in review and "data-batch-warning" in review
    assert re.findall(r"<tr><td>(\w+) <code>", review) == ["Sensor", "Gateway"]
    assert "× CN¥30.00" in review and "= CN¥15,000.00" in review and "× CN¥12.50" in review
    assert "CN¥17,500.00" in review


async def test_a_bonus_past_any_limit_names_what_one_pledge_may_come_to(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    token = await log_in(stripe_client, await sign_up(stripe_client, "Bea"))
    data = {"csrf_token": token, "tier": campaign["tiers"][0]["id"], "shipping_country": "CN", "action": "pledge"}
    path = f"/campaigns/{campaign['slug']}/back"
    for bonus in ("99999999999999", "70000.00"):
        answer = await stripe_client.post(path, data={**data, "bonus": bonus})
        assert answer.status_code == 422, answer.text
        assert "One pledge may come to at most CN¥70,000.00. Lower the bonus." in answer.text
    negative = await stripe_client.post(path, data={**data, "bonus": "-5"})
    assert negative.status_code == 422 and "This cannot be negative: enter zero or more." in negative.text
