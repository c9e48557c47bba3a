"""The campaign pages: discover, a campaign, the maker's dashboard and forms, the operator's queue and review form."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Campaign, CampaignImage, Product, Tier
from service.i18n import use_locale
from service.pages.money_input import NumberInputError, major_units, minor_units
from tests.helpers import (
    DELIVERY,
    Actor,
    add_product,
    add_tier,
    create_campaign,
    create_space,
    drafted_campaign,
    launched_campaign,
    make_admin,
    make_operator,
    month_in_chinese,
    month_in_english,
    sign_up,
)
from tests.pages import csrf_from, logged_in, post_form


async def count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def a_space_with_operator(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], **fields: Any
) -> tuple[dict[str, Any], Actor, Actor]:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin, **fields)
    return space, await make_operator(client, admin, space), admin


async def set_remaining(sessions: async_sessionmaker[AsyncSession], tier_id: str, remaining: int) -> None:
    async with sessions.begin() as session:
        await session.execute(update(Tier).where(Tier.id == uuid.UUID(tier_id)).values(remaining=remaining))


def png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 60)).save(buffer, "PNG")
    return buffer.getvalue()


# Money typed by people


def test_money_typed_in_major_units_becomes_exact_minor_units() -> None:
    assert minor_units("149.00", "CNY") == 14_900
    assert minor_units("149", "CNY") == 14_900
    assert minor_units("149.5", "CNY") == 14_950
    assert minor_units("1,499.99", "USD") == 149_999
    assert minor_units(" 0.10 ", "USD") == 10
    assert minor_units("5000", "JPY") == 5_000
    assert minor_units("1.234", "KWD") == 1_234
    assert minor_units("１４９．００", "CNY") == 14_900  # typed with a Chinese input method
    # Exact where floats are not: 0.1 + 0.2 and 1.15 * 100 would come out wrong.
    assert minor_units("1.15", "USD") == 115
    assert minor_units("12345678901.23", "CNY") == 1_234_567_890_123


def test_money_with_more_decimals_than_the_currency_has_is_refused_with_a_reason() -> None:
    with use_locale("en"):
        for text, currency, message in [
            ("149.001", "CNY", "CNY amounts have at most 2 decimal places."),
            ("5000.5", "JPY", "JPY amounts are whole numbers: leave out the decimals."),
            ("5000.00", "JPY", "JPY amounts are whole numbers: leave out the decimals."),
            ("-5", "CNY", "This cannot be negative: enter zero or more."),
            ("1e3", "USD", "Enter an amount in USD, like 149.00."),
            ("abc", "JPY", "Enter an amount in JPY, like 149."),
            ("9" * 40, "CNY", "This number is too large."),
        ]:
            with pytest.raises(NumberInputError) as refused:
                minor_units(text, currency)
            assert refused.value.message == message, text
    with use_locale("zh_CN"), pytest.raises(NumberInputError) as refused:
        minor_units("149.001", "CNY")
    assert refused.value.message == "CNY 金额最多有 2 位小数。"


def test_minor_units_are_shown_back_in_major_units() -> None:
    assert major_units(14_900, "CNY") == "149.00"
    assert major_units(5, "USD") == "0.05"
    assert major_units(5_000, "JPY") == "5000"
    for amount in (0, 1, 99, 100, 14_950, 10**12):
        assert minor_units(major_units(amount, "CNY"), "CNY") == amount


# Discover


async def test_discover_shows_live_campaigns_as_cards_in_english_and_chinese(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await a_space_with_operator(client, sessions, name="Chaihuo x.factory")
    live, maker, _ = await launched_campaign(
        client, sessions, space=space, operator=operator, title="Pocket Oscilloscope", duration_days=12
    )
    await create_campaign(client, maker, space, title="Quiet Draft")

    english = await client.get("/campaigns")
    assert english.status_code == 200
    assert "Discover campaigns" in english.text
    assert f'href="/campaigns/{live["slug"]}"' in english.text
    assert "Pocket Oscilloscope" in english.text and "Quiet Draft" not in english.text
    assert "Vetted by Chaihuo x.factory" in english.text
    assert '<progress class="progress" max="100" value="0"' in english.text
    assert "<dd>12</dd>" in english.text and "days left" in english.text

    chinese = await client.get("/campaigns?lang=zh_CN")
    assert chinese.status_code == 200
    assert "发现众筹项目" in chinese.text and "剩余天数" in chinese.text
    assert "Pocket Oscilloscope" in chinese.text


async def test_discover_filters_by_space_by_city_and_by_words_in_any_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shenzhen, sz_operator, admin = await a_space_with_operator(client, sessions, name="Chaihuo", city="Shenzhen")
    second = await create_space(client, admin, name="Seeed Lab", city="Shenzhen")
    second_operator = await make_operator(client, admin, second)
    shanghai = await create_space(client, admin, name="Xinchejian", city="Shanghai")
    sh_operator = await make_operator(client, admin, shanghai)
    soil, _m, _o = await launched_campaign(
        client, sessions, space=shenzhen, operator=sz_operator, title="Open Soil Sensor"
    )
    paddy, _m, _o = await launched_campaign(
        client, sessions, space=second, operator=second_operator, title="稻田卫士", summary="稻田水位监测浮标"
    )
    lamp, _m, _o = await launched_campaign(
        client, sessions, space=shanghai, operator=sh_operator, title="Desk Lamp", summary="A warm light."
    )

    def shown(page: httpx.Response) -> set[str]:
        assert page.status_code == 200, page.text
        return {c["slug"] for c in (soil, paddy, lamp) if f'href="/campaigns/{c["slug"]}"' in page.text}

    assert shown(await client.get("/campaigns")) == {soil["slug"], paddy["slug"], lamp["slug"]}
    assert shown(await client.get(f"/campaigns?space={shenzhen['slug']}")) == {soil["slug"]}
    assert shown(await client.get("/campaigns?city=Shenzhen")) == {soil["slug"], paddy["slug"]}
    assert shown(await client.get("/campaigns?city=shanghai")) == {lamp["slug"]}
    assert shown(await client.get(f"/campaigns?city=Shanghai&space={shenzhen['slug']}")) == set()
    assert shown(await client.get("/campaigns?q=soil")) == {soil["slug"]}
    assert shown(await client.get("/campaigns?q=水位")) == {paddy["slug"]}
    assert shown(await client.get("/campaigns?q=稻田&city=Shenzhen")) == {paddy["slug"]}
    assert shown(await client.get("/campaigns?q=100%25")) == set()

    empty = await client.get("/campaigns?q=zeppelin&lang=zh_CN")
    assert "没有符合条件的众筹项目" in empty.text
    page = await client.get("/campaigns?city=Shenzhen")
    assert '<option value="Shenzhen" selected>' in page.text
    refused = await client.get("/campaigns?q=" + "x" * 201)
    assert refused.status_code == 422 and 'id="filter-q-error"' in refused.text


async def test_discover_pages_through_a_city_of_several_spaces_without_repeats(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.pages import campaigns as pages

    monkeypatch.setattr(pages, "CARDS_PER_PAGE", 2)
    first, first_operator, admin = await a_space_with_operator(client, sessions, city="Shenzhen")
    second = await create_space(client, admin, city="Shenzhen")
    second_operator = await make_operator(client, admin, second)
    slugs = []
    for space, operator in ((first, first_operator), (second, second_operator), (first, first_operator)):
        campaign, _m, _o = await launched_campaign(client, sessions, space=space, operator=operator)
        slugs.append(campaign["slug"])

    seen: list[str] = []
    url = "/campaigns?city=Shenzhen"
    for _page in range(5):
        page = (await client.get(url)).text
        seen += re.findall(r'class="card-link" href="/campaigns/([^"]+)"', page)
        more = re.search(r'href="(/campaigns\?[^"]+)">More campaigns<', page)
        if more is None:
            break
        url = more.group(1).replace("&amp;", "&")
    assert seen == list(reversed(slugs))


# One campaign


async def test_the_campaign_page_shows_progress_tiers_and_the_sponsors_vetting(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await a_space_with_operator(client, sessions, name="Chaihuo x.factory", city="Shenzhen")
    campaign, _maker, _ = await launched_campaign(
        client, sessions, space=space, operator=operator, title="Open Soil Sensor", limited_quantity=10
    )
    early_bird, pair = campaign["tiers"]
    await set_remaining(sessions, early_bird["id"], 0)
    slug = campaign["slug"]

    page = await client.get(f"/campaigns/{slug}")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Open Soil Sensor</h1>" in text
    assert "<h2>The sensor</h2>" in text  # the story, rendered from Markdown
    assert "Vetted and sponsored by" in text and ">Chaihuo x.factory</a>" in text
    for item in (
        "Prototype shown",
        "Bill of materials costed",
        "Manufacturing partner quoted",
        "Certifications planned",
    ):
        assert item in text
    assert text.count('class="check-icon check-yes"') == 4
    assert "Prototype seen at the space." in text  # the operator's notes
    assert '<progress class="progress progress-large" max="100" value="0"' in text
    assert "CN¥0" in text and "pledged of a CN¥1,000 goal" in text
    assert "Sold out" in text
    assert f'href="/campaigns/{slug}/back?tier={early_bird["id"]}"' not in text
    assert f'href="/campaigns/{slug}/back?tier={pair["id"]}"' in text
    assert f'href="/campaigns/{slug}/back"' in text and "Back this project" in text
    assert "Unlimited" in text and month_in_english(DELIVERY) in text
    assert "China" in text and "Everywhere else" in text and "+ CN¥50.00" in text
    assert "1 ×</span> Sensor" in text and "2 ×</span> Sensor" in text

    await set_remaining(sessions, early_bird["id"], 3)
    text = (await client.get(f"/campaigns/{slug}")).text
    assert "3 of 10 left" in text and "Sold out" not in text
    assert f'href="/campaigns/{slug}/back?tier={early_bird["id"]}"' in text

    chinese = (await client.get(f"/campaigns/{slug}?lang=zh_CN")).text
    assert "支持这个项目" in chinese and "剩余 3 / 10" in chinese
    assert "已展示原型" in chinese and month_in_chinese(DELIVERY) in chinese and "中国" in chinese
    assert "Prototype seen at the space." in chinese


async def test_the_back_button_is_for_others_and_only_while_the_campaign_is_live(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(client, sessions)
    slug = campaign["slug"]
    async with logged_in(client, maker) as browser:
        own = (await browser.get(f"/campaigns/{slug}")).text
    assert "/back" not in own and f'href="/maker/campaigns/{slug}"' in own
    async with logged_in(client, await sign_up(client, "Ben")) as browser:
        assert f'href="/campaigns/{slug}/back"' in (await browser.get(f"/campaigns/{slug}")).text

    async with sessions.begin() as session:
        await session.execute(update(Campaign).where(Campaign.slug == slug).values(status="successful"))
    closed = (await client.get(f"/campaigns/{slug}")).text
    assert "/back" not in closed and "This campaign reached its goal." in closed


async def test_a_draft_is_not_found_for_strangers_and_a_preview_for_its_maker(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    draft = await drafted_campaign(client, maker, space)
    slug = draft["slug"]

    assert (await client.get(f"/campaigns/{slug}")).status_code == 404
    async with logged_in(client, await sign_up(client, "Stranger")) as stranger:
        assert (await stranger.get(f"/campaigns/{slug}")).status_code == 404
        assert (await stranger.get(f"/maker/campaigns/{slug}")).status_code == 404
        assert (await stranger.get(f"/operator/campaigns/{slug}")).status_code == 404
    async with logged_in(client, maker) as browser:
        preview = await browser.get(f"/campaigns/{slug}")
    assert preview.status_code == 200 and "Preview:" in preview.text and "/back" not in preview.text
    async with logged_in(client, operator) as browser:
        assert (await browser.get(f"/campaigns/{slug}")).status_code == 200

    by_id = await client.get(f"/campaigns/{draft['id']}", follow_redirects=False)
    assert by_id.status_code == 404
    assert (await client.get("/campaigns/no-such-campaign")).status_code == 404


async def test_a_campaign_reached_by_its_id_redirects_to_its_address(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    response = await client.get(f"/campaigns/{campaign['id']}", follow_redirects=False)
    assert response.status_code == 301 and response.headers["location"] == f"/campaigns/{campaign['slug']}"


async def test_the_campaign_page_asks_the_database_the_same_number_of_times_however_many_tiers(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await a_space_with_operator(client, sessions)
    small, _maker, _ = await launched_campaign(client, sessions, space=space, operator=operator)
    maker = await sign_up(client, "Busy")
    big = await create_campaign(client, maker, space)
    await add_product(client, maker, big)
    for n in range(8):
        await add_tier(client, maker, big, title=f"Tier {n}", quantity_limit=5)
    assert (await client.post(f"/api/v1/campaigns/{big['id']}/submit", headers=maker.headers)).status_code == 200
    review = {
        "decision": "approve",
        "notes": "",
        "checklist": {
            "prototype": True,
            "bill_of_materials": True,
            "manufacturing_quote": True,
            "certifications": True,
        },
    }
    assert (
        await client.post(f"/api/v1/campaigns/{big['id']}/review", json=review, headers=operator.headers)
    ).status_code == 200
    assert (await client.post(f"/api/v1/campaigns/{big['id']}/launch", headers=maker.headers)).status_code == 200

    engine = client.app.state.engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        assert (await client.get(f"/campaigns/{small['slug']}")).status_code == 200
        for_two = len(statements)
        statements.clear()
        page = await client.get(f"/campaigns/{big['slug']}")
        assert page.status_code == 200 and page.text.count('class="card tier-card') == 8
        for_eight = len(statements)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert for_two == for_eight


# The maker's dashboard and forms


async def test_the_maker_dashboard_lists_my_campaigns_with_their_next_step(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    anonymous = await client.get("/maker", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/maker"

    space, operator, _admin = await a_space_with_operator(client, sessions, name="Chaihuo x.factory")
    live, maker, _ = await launched_campaign(client, sessions, space=space, operator=operator, title="Soil Sensor")
    await create_campaign(client, maker, space, title="Second Idea")
    await create_campaign(client, await sign_up(client, "Other"), space, title="Not Mine")
    async with logged_in(client, maker) as browser:
        english = (await browser.get("/maker")).text
        chinese = (await browser.get("/maker?lang=zh_CN")).text
    assert "Soil Sensor" in english and "Second Idea" in english and "Not Mine" not in english
    assert f'href="/maker/campaigns/{live["slug"]}"' in english
    assert "Live: 30 days left." in english
    assert "Add its products and at least one reward tier, then submit it for review." in english
    assert "我的众筹" in chinese and "众筹中：还剩 30 天。" in chinese


async def test_a_campaign_form_with_bad_input_shows_each_message_beside_its_field_and_saves_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    async with logged_in(client, maker) as browser:
        bad = {
            "title": "",
            "summary": "A lamp.",
            "description": "",
            "currency": "CNY",
            "goal": "12.345",
            "space_id": "",
            "duration_days": "90",
        }
        response = await post_form(browser, "/maker/new", bad, form_page="/maker/new")
        assert response.status_code == 422
        page = response.text
        assert 'id="field-title-error"' in page and "This field is required." in page
        assert 'id="field-goal-error"' in page and "CNY amounts have at most 2 decimal places." in page
        assert 'id="field-space_id-error"' in page and "Choose the makerspace that will vet your campaign." in page
        assert 'id="field-duration_days-error"' in page and "Enter a whole number of days from 1 to 60." in page
        assert 'value="12.345"' in page and ">A lamp.</textarea>" in page

        jpy = {**bad, "title": "Lamp", "space_id": space["id"], "duration_days": "30", "currency": "JPY"}
        response = await post_form(browser, "/maker/new?lang=zh_CN", {**jpy, "goal": "5000.5"}, form_page="/maker/new")
        assert response.status_code == 422 and "JPY 金额是整数，请去掉小数部分。" in response.text
        gone = {**jpy, "goal": "5000", "space_id": str(uuid.uuid4())}
        response = await post_form(browser, "/maker/new", gone, form_page="/maker/new")
        assert response.status_code == 422 and 'id="field-space_id-error"' in response.text
    assert await count(sessions, Campaign) == 0


async def test_a_maker_drafts_a_campaign_with_products_and_tiers_through_the_forms(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    async with logged_in(client, maker) as browser:
        fields = {
            "title": "Desk Lamp",
            "summary": "A warm lamp.",
            "description": "## Light\n\nWarm.",
            "currency": "CNY",
            "goal": "50,000.00",
            "space_id": space["id"],
            "duration_days": "30",
        }
        created = await post_form(browser, "/maker/new", fields, form_page="/maker/new")
        assert created.status_code == 303
        manage = created.headers["location"]
        assert manage == "/maker/campaigns/desk-lamp?done=created"
        base = "/maker/campaigns/desk-lamp"

        product = {"sku": "LAMP-1", "name": "Lamp", "weight_grams": "800", "unit_cost": "45.50", "batch_size": "300"}
        added = await post_form(
            browser, f"{base}/products/new", {**product, "overage_percent": "2.5"}, form_page=f"{base}/products/new"
        )
        assert added.status_code == 303
        taken = await post_form(browser, f"{base}/products/new", product, form_page=f"{base}/products/new")
        assert taken.status_code == 409 and "This campaign already has a product with this SKU." in taken.text

        bad_tier = {
            "title": "Early bird",
            "price": "149.001",
            "limit": "limited",
            "quantity_limit": "",
            "estimated_delivery": "March",
            "items-0-sku": "LAMP-1",
            "items-0-quantity": "0",
            "shipping-0-country": "Atlantis",
            "shipping-0-fee": "10",
            "shipping-1-country": "CN",
            "shipping-1-fee": "1.001",
        }
        refused = await post_form(browser, f"{base}/tiers/new", bad_tier, form_page=f"{base}/tiers/new")
        assert refused.status_code == 422
        page = refused.text
        assert 'id="field-price-error"' in page and "CNY amounts have at most 2 decimal places." in page
        assert 'id="quantity_limit-error"' in page
        assert 'id="field-estimated_delivery-error"' in page
        assert 'id="items-0-quantity-error"' in page
        assert 'id="shipping-0-country-error"' in page and "Choose a country from the list" in page
        assert 'id="shipping-1-fee-error"' in page
        assert await count(sessions, Tier) == 0

        more = await post_form(browser, f"{base}/tiers/new", {**bad_tier, "more_rows": "1"}, form_page=manage)
        assert more.status_code == 200 and 'name="items-5-sku"' in more.text and "field-error" not in more.text

        tier = {
            "title": "Early bird",
            "description": "Be first.",
            "price": "149",
            "limit": "limited",
            "quantity_limit": "100",
            "estimated_delivery": DELIVERY,
            "items-0-sku": "LAMP-1",
            "items-0-quantity": "2",
            "items-1-sku": "",
            "items-1-quantity": "",
            "shipping-0-country": "China",
            "shipping-0-fee": "10",
            "shipping-2-country": "*",
            "shipping-2-fee": "80.50",
        }
        saved = await post_form(browser, f"{base}/tiers/new", tier, form_page=f"{base}/tiers/new")
        assert saved.status_code == 303, saved.text
        page = (await browser.get(saved.headers["location"])).text
        assert "The reward tier is added." in page and "Early bird" in page

    detail = (await client.get("/api/v1/campaigns/desk-lamp", headers=maker.headers)).json()
    assert detail["goal"] == 5_000_000 and detail["description"] == "## Light\n\nWarm."
    assert detail["products"] == [
        {
            "id": detail["products"][0]["id"],
            "sku": "LAMP-1",
            "name": "Lamp",
            "language": "en",
            "translations": {},
            "weight_grams": 800,
            "unit_cost": 4_550,
            "batch_size": 300,
            "overage_bps": 250,
            "options": [],
            "variants": [],
        }
    ]
    [saved_tier] = detail["tiers"]
    assert saved_tier["price"] == 14_900 and saved_tier["quantity_limit"] == 100
    assert saved_tier["items"] == [{"sku": "LAMP-1", "quantity": 2}]
    assert saved_tier["shipping"] == [{"country": "CN", "fee": 1_000}, {"country": "*", "fee": 8_050}]
    assert saved_tier["estimated_delivery"] == DELIVERY


async def test_a_maker_edits_and_removes_what_a_draft_holds(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    draft = await drafted_campaign(client, maker, space, currency="JPY", goal=500_000)
    base = f"/maker/campaigns/{draft['slug']}"
    early_bird = draft["tiers"][0]
    product = draft["products"][0]
    async with logged_in(client, maker) as browser:
        form = (await browser.get(f"{base}/edit")).text
        assert 'value="500000"' in form and '<option value="JPY" selected>' in form
        tier_form = (await browser.get(f"{base}/tiers/{early_bird['id']}/edit")).text
        assert 'value="14900"' in tier_form and 'value="limited" checked' in tier_form
        assert 'name="shipping-1-country"' in tier_form and '<option value="*" selected>' in tier_form

        edited = dict(re.findall(r'name="([^"]+)"[^>]*value="([^"]*)"', form))
        edited.update({"title": "Renamed", "summary": "Still a sensor.", "description": "", "goal": "600000"})
        edited.update({"currency": "JPY", "space_id": space["id"]})  # <select>s: not in the regex
        edited.pop("csrf_token")
        response = await post_form(browser, f"{base}/edit", edited, form_page=f"{base}/edit")
        assert response.status_code == 303, re.findall(r'class="field-error"[^>]*>([^<]+)<', response.text)
        page = (await browser.get(f"{base}/tiers/{early_bird['id']}/edit")).text
        fields = dict(re.findall(r'name="([^"]+)"[^>]*value="([^"]*)"', page))
        fields.pop("csrf_token")
        fields.pop("more_rows")  # the "More rows" button, which saves nothing
        fields.update({"limit": "unlimited", "price": "9999"})
        # <select>s: not in the regex
        fields.update({"items-0-sku": "SKU-A", "shipping-0-country": "CN", "shipping-1-country": "*"})
        response = await post_form(browser, f"{base}/tiers/{early_bird['id']}/edit", fields, form_page=base)
        assert response.status_code == 303, re.findall(r'class="field-error"[^>]*>([^<]+)<', response.text)
        removed = await post_form(
            browser, f"{base}/products/{product['id']}/remove", {"confirm": "yes"}, form_page=base
        )
        assert removed.status_code == 303
    detail = (await client.get(f"/api/v1/campaigns/{draft['id']}", headers=maker.headers)).json()
    assert detail["title"] == "Renamed" and detail["goal"] == 600_000
    assert detail["tiers"][0]["price"] == 9_999 and detail["tiers"][0]["quantity_limit"] is None
    assert detail["products"] == []


async def test_submitting_needs_a_tier_and_then_waits_for_the_space(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions, name="Chaihuo")
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space)
    base = f"/maker/campaigns/{campaign['slug']}"
    async with logged_in(client, maker) as browser:
        refused = await post_form(browser, f"{base}/submit", {}, form_page=base)
        assert refused.status_code == 409
        assert "Add at least one reward tier before you submit the campaign." in refused.text
        await add_product(client, maker, campaign, batch_size=10)
        tier = await add_tier(client, maker, campaign, items=[{"sku": "SKU-A", "quantity": 11}])
        too_big = await post_form(browser, f"{base}/submit", {}, form_page=base)
        assert too_big.status_code == 409
        assert "needs more of a product than one manufacturing batch makes" in too_big.text
        smaller = await client.patch(
            f"/api/v1/campaigns/{campaign['id']}/tiers/{tier['id']}",
            json={"items": [{"sku": "SKU-A", "quantity": 2}]},
            headers=maker.headers,
        )
        assert smaller.status_code == 200, smaller.text
        assert f'href="{base}/edit"' in (await browser.get(base)).text  # a draft's details can be edited
        submitted = await post_form(browser, f"{base}/submit", {}, form_page=base)
        assert submitted.status_code == 303
        page = (await browser.get(submitted.headers["location"])).text
        assert "Submitted." in page and "Chaihuo is reviewing your campaign." in page
        assert "Submitted for review" in page  # the timeline
        assert f'href="{base}/edit"' not in page  # no longer, in review
        again = await post_form(browser, f"{base}/submit", {}, form_page=base)
        assert again.status_code == 409
        for form in ("/edit", "/products/new", "/tiers/new"):  # nothing left to change while in review
            moved = await browser.get(base + form)
            assert moved.status_code == 303 and moved.headers["location"] == base


async def test_images_are_uploaded_and_removed_through_the_form(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space)
    base = f"/maker/campaigns/{campaign['slug']}"
    async with logged_in(client, maker) as browser:
        token = await csrf_from(browser, base)
        upload = await browser.post(
            f"{base}/images", data={"csrf_token": token, "role": "cover"}, files={"file": ("c.png", png(), "image/png")}
        )
        assert upload.status_code == 303
        await browser.post(
            f"{base}/images",
            data={"csrf_token": token, "role": "gallery"},
            files={"file": ("g.png", png(), "image/png")},
        )
        bad = await browser.post(
            f"{base}/images",
            data={"csrf_token": token, "role": "gallery"},
            files={"file": ("x.png", b"not an image", "image/png")},
        )
        assert bad.status_code == 422 and 'id="field-file-error"' in bad.text
        nothing = await browser.post(f"{base}/images", data={"csrf_token": token, "role": "gallery"})
        assert nothing.status_code == 422 and "Choose an image file to upload." in nothing.text
        forged = await browser.post(f"{base}/images", files={"file": ("g.png", png(), "image/png")})
        assert forged.status_code == 403
        page = (await browser.get(base)).text
        assert page.count("/media/" + campaign["id"]) == 2
        gallery_id = re.search(rf'action="{base}/images/([^/]+)/remove"', page)
        assert gallery_id
        remove = f"{base}/images/{gallery_id.group(1)}/remove"
        asked = await browser.post(remove, data={"csrf_token": token})
        assert asked.status_code == 200 and "Remove this picture?" in asked.text
        assert "It cannot be brought back: to show it again, you upload it anew." in asked.text
        assert (await browser.get(base)).text.count("/media/" + campaign["id"]) == 2
        removed = await browser.post(remove, data={"csrf_token": token, "confirm": "yes"})
        assert removed.status_code == 303
    async with sessions() as session:
        roles = list(await session.scalars(select(CampaignImage.role)))
    assert roles == ["cover"]


async def test_an_approved_campaign_is_launched_and_gets_an_update_through_the_forms(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space, duration_days=20)
    await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)
    review = {
        "decision": "approve",
        "notes": "Seen.",
        "checklist": {
            "prototype": True,
            "bill_of_materials": True,
            "manufacturing_quote": True,
            "certifications": True,
        },
    }
    await client.post(f"/api/v1/campaigns/{campaign['id']}/review", json=review, headers=operator.headers)
    base = f"/maker/campaigns/{campaign['slug']}"
    async with logged_in(client, maker) as browser:
        page = (await browser.get(base)).text
        assert "Once you launch, backers can pledge for 20 days." in page
        launched = await post_form(browser, f"{base}/launch", {"confirm": "yes"}, form_page=base)
        assert launched.status_code == 303
        page = (await browser.get(launched.headers["location"])).text
        assert "Your campaign is live." in page and "Launched" in page and "Approved by the makerspace" in page
        empty = await post_form(
            browser, f"{base}/updates", {"title": "", "body": "", "visibility": "public"}, form_page=base
        )
        assert empty.status_code == 422 and 'id="field-title-error"' in empty.text
        posted = await post_form(
            browser,
            f"{base}/updates",
            {"title": "Tooling done", "body": "The **mould** is ready.", "visibility": "public"},
            form_page=base,
        )
        assert posted.status_code == 303
    public = (await client.get(f"/campaigns/{campaign['slug']}")).text
    assert "Tooling done" in public and "<strong>mould</strong>" in public


# The operator's queue and review form


async def test_the_operator_reviews_with_the_checklist_and_sees_past_decisions(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, admin = await a_space_with_operator(client, sessions, name="Chaihuo")
    other_space = await create_space(client, admin, name="Elsewhere")
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space, title="Open Soil Sensor")
    elsewhere = await drafted_campaign(client, maker, other_space, title="Not For You")
    for draft in (campaign, elsewhere):
        await client.post(f"/api/v1/campaigns/{draft['id']}/submit", headers=maker.headers)
    review_url = f"/operator/campaigns/{campaign['slug']}"

    async with logged_in(client, operator) as browser:
        queue = (await browser.get("/operator")).text
        assert f'href="{review_url}"' in queue and "Not For You" not in queue

        form = (await browser.get(review_url)).text
        assert "Prototype shown" in form and "CN¥30.00" in form  # the products' unit costs
        assert "Cost of the products: CN¥30.00" in form
        incomplete = await post_form(
            browser,
            review_url,
            {"decision": "approve", "notes": "", "checklist-prototype": "yes", "checklist-certifications": "no"},
            form_page=review_url,
        )
        assert incomplete.status_code == 422
        assert 'id="checklist-bill_of_materials-error"' in incomplete.text
        assert "Answer yes or no before approving." in incomplete.text
        assert 'id="checklist-prototype-yes" name="checklist-prototype" value="yes" checked' in incomplete.text
        no_decision = await post_form(browser, review_url, {"notes": "hm"}, form_page=review_url)
        assert no_decision.status_code == 422 and 'id="decision-error"' in no_decision.text

        answers = {f"checklist-{item}": "yes" for item in ("prototype", "bill_of_materials", "manufacturing_quote")}
        unexplained = await post_form(
            browser,
            review_url,
            {"decision": "approve", "notes": "", **answers, "checklist-certifications": "no"},
            form_page=review_url,
        )
        assert unexplained.status_code == 422 and 'id="field-notes-error"' in unexplained.text
        approved = await post_form(
            browser,
            review_url,
            {
                "decision": "approve",
                "notes": "CE testing is booked for March; everything else seen at the space.",
                **answers,
                "checklist-certifications": "no",
            },
            form_page=review_url,
        )
        assert approved.status_code == 303 and approved.headers["location"] == "/operator?done=approve"
        after = (await browser.get(approved.headers["location"])).text
        assert "Approved. The maker is told by mail" in after
        assert f'href="/campaigns/{campaign["slug"]}"' in after and "Open Soil Sensor" in after
        assert "Nothing to review" in after
        closed = (await browser.get(review_url)).text
        assert "This campaign is not waiting for a review." in closed
        chinese = (await browser.get("/operator?lang=zh_CN")).text
        assert "待你审核" in chinese and "你过去的决定" in chinese

    detail = (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()
    assert detail["status"] == "approved"
    assert detail["review"]["checklist"]["certifications"] is False
    async with logged_in(client, maker) as browser:
        page = (await browser.get(f"/campaigns/{campaign['slug']}")).text
    assert "CE testing is booked for March" in page and 'class="check-icon check-no"' in page


async def test_asking_for_changes_sends_the_draft_back_with_the_notes(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await a_space_with_operator(client, sessions, name="Chaihuo")
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space)
    await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)
    review_url = f"/operator/campaigns/{campaign['slug']}"
    async with logged_in(client, operator) as browser:
        response = await post_form(
            browser,
            review_url,
            {"decision": "request_changes", "notes": "Show us the factory quote.", "checklist-prototype": "yes"},
            form_page=review_url,
        )
        assert response.status_code == 303
    async with logged_in(client, maker) as browser:
        dashboard = (await browser.get("/maker")).text
        assert "Chaihuo asked for changes: read their notes, then submit again." in dashboard
        page = (await browser.get(f"/maker/campaigns/{campaign['slug']}")).text
        assert "Changes requested" in page and "Show us the factory quote." in page
        assert "Changes requested by the makerspace" in page  # the timeline
        chinese = (await browser.get(f"/maker/campaigns/{campaign['slug']}?lang=zh_CN")).text
        assert "时间线" in chinese and "Show us the factory quote." in chinese
        own_review = await browser.get(review_url)
        assert "another operator of the makerspace must review it" not in own_review.text


async def test_a_maker_who_operates_the_space_cannot_review_their_own_campaign(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, admin = await a_space_with_operator(client, sessions)
    campaign = await drafted_campaign(client, operator, space)
    await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=operator.headers)
    review_url = f"/operator/campaigns/{campaign['slug']}"
    async with logged_in(client, await make_operator(client, admin, space, "Other")) as browser:
        assert 'name="decision"' in (await browser.get(review_url)).text  # another operator of the space reviews it
    async with logged_in(client, operator) as browser:
        assert "Nothing to review" in (await browser.get("/operator")).text
        page = (await browser.get(review_url)).text
        assert "another operator of the makerspace must review it" in page and 'name="decision"' not in page
        refused = await post_form(browser, review_url, {"decision": "approve"}, form_page="/operator")
        assert refused.status_code == 403


# Forms from elsewhere


@pytest.mark.parametrize(
    "path",
    [
        "/maker/new",
        "/maker/campaigns/{slug}/edit",
        "/maker/campaigns/{slug}/submit",
        "/maker/campaigns/{slug}/products/new",
        "/maker/campaigns/{slug}/tiers/new",
        "/maker/campaigns/{slug}/updates",
        "/operator/campaigns/{slug}",
    ],
)
async def test_a_form_posted_without_the_csrf_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], path: str
) -> None:
    space, _operator, _admin = await a_space_with_operator(client, sessions)
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space)
    async with logged_in(client, maker) as browser:
        response = await browser.post(
            path.format(slug=campaign["slug"]),
            data={"title": "Forged", "summary": "x", "currency": "CNY", "goal": "1", "decision": "approve"},
        )
        assert response.status_code == 403
        assert "You can't do that here" in response.text
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Campaign)) == 1
        assert await session.scalar(select(func.count()).select_from(Product)) == 1
        assert await session.scalar(select(Campaign.status)) == "draft"


async def test_every_campaign_page_renders_in_chinese(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space, operator, _admin = await a_space_with_operator(client, sessions)
    live, maker, _ = await launched_campaign(client, sessions, space=space, operator=operator)
    draft = await drafted_campaign(client, maker, space)
    await client.post(f"/api/v1/campaigns/{draft['id']}/submit", headers=maker.headers)
    editable = await drafted_campaign(client, maker, space)
    expected = {
        "/campaigns": "发现众筹项目",
        f"/campaigns/{live['slug']}": "回报",
        "/maker": "我的众筹",
        "/maker/new": "发起众筹",
        f"/maker/campaigns/{live['slug']}": "时间线",
        f"/maker/campaigns/{editable['slug']}/products/new": "添加产品",
    }
    async with logged_in(client, maker) as browser:
        for path, words in expected.items():
            page = await browser.get(path + "?lang=zh_CN")
            assert page.status_code == 200, path
            assert words in page.text, path
            assert '<html lang="zh-CN">' in page.text
    async with logged_in(client, operator) as browser:
        for path, words in {"/operator": "审核队列", f"/operator/campaigns/{draft['slug']}": "你的审核"}.items():
            page = await browser.get(path + "?lang=zh_CN")
            assert page.status_code == 200 and words in page.text, path
