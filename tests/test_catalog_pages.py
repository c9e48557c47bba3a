"""The maker's pages for product options, variants and add-ons; what the public page and the space's review show of
them; in English and Chinese."""

from __future__ import annotations

import html
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.helpers import (
    Actor,
    add_product,
    approve_campaign,
    create_space,
    drafted_campaign,
    make_admin,
    make_operator,
    sign_up,
)
from tests.pages import csrf_from, logged_in, post_form


async def a_draft(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> tuple[Actor, Actor, dict[str, Any]]:
    """(maker, operator, draft json): the helpers' draft (SKU-A, two tiers) with a LAMP product besides."""
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    maker = await sign_up(client, "Maker")
    draft = await drafted_campaign(client, maker, space)
    await add_product(client, maker, draft, sku="LAMP", name="Desk lamp", weight_grams=900)
    shown = await client.get(f"/api/v1/campaigns/{draft['id']}", headers=maker.headers)
    return maker, operator, shown.json()


def lamp(campaign: dict[str, Any]) -> dict[str, Any]:
    return next(product for product in campaign["products"] if product["sku"] == "LAMP")


async def campaign_json(client: httpx.AsyncClient, maker: Actor, campaign: dict[str, Any]) -> dict[str, Any]:
    return dict((await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json())


async def test_a_maker_gives_a_product_options_and_edits_its_variants_through_the_forms(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, _operator, draft = await a_draft(client, sessions)
    page = f"/maker/campaigns/{draft['slug']}/products/{lamp(draft)['id']}/options"
    async with logged_in(client, maker) as browser:
        edit_page = await browser.get(f"/maker/campaigns/{draft['slug']}/products/{lamp(draft)['id']}/edit")
        assert page in edit_page.text
        saved = await post_form(
            browser,
            page,
            {"options-0-name": "colour", "options-0-values": "black, white", "options-1-name": "plug",
             "options-1-values": "EU，US、CN"},
            form_page=page,
        )  # fmt: skip
        assert saved.status_code == 303, saved.text
        shown = await browser.get(saved.headers["location"])
        assert "LAMP-BLC-EU" in shown.text and "LAMP-WHT-CN" in shown.text
        variants = lamp(await campaign_json(client, maker, draft))["variants"]
        assert len(variants) == 6

        rows: dict[str, str] = {}
        for index, variant in enumerate(variants):
            rows |= {f"variants-{index}-id": variant["id"], f"variants-{index}-sku": variant["sku"]}
        rows |= {"variants-0-sku": "LAMP-NOIR-EU", "variants-0-limit": "25"}
        edited = await post_form(browser, page.replace("/options", "/variants"), rows, form_page=page)
        assert edited.status_code == 303, edited.text
        first = lamp(await campaign_json(client, maker, draft))["variants"][0]
        assert (first["sku"], first["limit"], first["remaining"]) == ("LAMP-NOIR-EU", 25, 25)

        manage = await browser.get(f"/maker/campaigns/{draft['slug']}")
        assert "colour: black, white" in html.unescape(manage.text) and "6 variants" in manage.text
        assert "LAMP-NOIR-EU" in manage.text
        # Values read in the order of the options, whatever order the database keeps a choice's keys in.
        assert "black, EU" in manage.text and "EU, black" not in manage.text


async def test_bad_options_and_variants_come_back_with_the_message_beside_the_field_and_save_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, _operator, draft = await a_draft(client, sessions)
    page = f"/maker/campaigns/{draft['slug']}/products/{lamp(draft)['id']}/options"
    async with logged_in(client, maker) as browser:
        no_name = await post_form(browser, page, {"options-0-values": "black, white"}, form_page=page)
        assert no_name.status_code == 422
        assert 'id="options-0-name-error"' in no_name.text and 'value="black, white"' in no_name.text
        twice = await post_form(
            browser, page, {"options-0-name": "colour", "options-0-values": "black, Black"}, form_page=page
        )
        assert twice.status_code == 422 and 'id="options-0-values-error"' in twice.text
        many = {f"options-{i}-name": f"o{i}" for i in range(3)} | {
            f"options-{i}-values": "a, b, c, d, e" for i in range(3)
        }
        too_many = await post_form(browser, page, many, form_page=page)
        assert too_many.status_code == 422 and "125" in too_many.text and "100" in too_many.text
        assert lamp(await campaign_json(client, maker, draft))["variants"] == []

        await post_form(browser, page, {"options-0-name": "colour", "options-0-values": "black, white"}, form_page=page)
        variants = lamp(await campaign_json(client, maker, draft))["variants"]
        same_sku = {
            "variants-0-id": variants[0]["id"],
            "variants-0-sku": "LAMP-X",
            "variants-1-id": variants[1]["id"],
            "variants-1-sku": "LAMP-X",
        }
        refused = await post_form(browser, page.replace("/options", "/variants"), same_sku, form_page=page)
        assert refused.status_code == 422 and 'id="variants-1-sku-error"' in refused.text
        product_sku = {
            "variants-0-id": variants[0]["id"],
            "variants-0-sku": "SKU-A",
            "variants-1-id": variants[1]["id"],
            "variants-1-sku": variants[1]["sku"],
            "variants-1-limit": "0",
        }
        refused = await post_form(browser, page.replace("/options", "/variants"), product_sku, form_page=page)
        assert refused.status_code == 422 and 'id="variants-1-limit-error"' in refused.text
        del product_sku["variants-1-limit"]
        taken = await post_form(browser, page.replace("/options", "/variants"), product_sku, form_page=page)
        assert taken.status_code == 409 and 'id="variants-0-sku-error"' in taken.text
    assert [v["sku"] for v in lamp(await campaign_json(client, maker, draft))["variants"]] == ["LAMP-BLC", "LAMP-WHT"]


async def test_a_maker_adds_edits_and_removes_an_add_on_after_confirming(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, _operator, draft = await a_draft(client, sessions)
    base = f"/maker/campaigns/{draft['slug']}"
    new = f"{base}/add-ons/new"
    early = draft["tiers"][0]
    async with logged_in(client, maker) as browser:
        form = await browser.get(new)
        assert "Desk lamp (LAMP)" in form.text
        added = await browser.post(
            new,
            data={
                "csrf_token": await csrf_from(browser, new),
                "offer": lamp(draft)["id"],
                "price": "99",
                "quantity_limit": "30",
                "tier_ids": [early["id"]],
                "shipping-0-country": "CN",
                "shipping-0-fee": "12",
            },
        )
        assert added.status_code == 303, added.text
        add_on = (await campaign_json(client, maker, draft))["add_ons"][0]
        assert (add_on["price"], add_on["limit"], add_on["tier_ids"], add_on["ships_alone"]) == (
            9_900,
            30,
            [early["id"]],
            False,
        )
        assert add_on["shipping"] == [{"country": "CN", "fee": 1_200}]
        manage = await browser.get(f"{base}#add-ons")
        assert "Desk lamp" in manage.text and "Only with a reward that ships." in manage.text

        edit = f"{base}/add-ons/{add_on['id']}/edit"
        assert 'value="99.00"' in (await browser.get(edit)).text
        saved = await post_form(browser, edit, {"offer": lamp(draft)["id"], "price": "89", "ships_alone": "1"},
                                form_page=edit)  # fmt: skip
        assert saved.status_code == 303, saved.text
        add_on = (await campaign_json(client, maker, draft))["add_ons"][0]
        assert (add_on["price"], add_on["limit"], add_on["tier_ids"], add_on["ships_alone"]) == (8_900, None, [], True)

        remove = f"{base}/add-ons/{add_on['id']}/remove"
        asked = await post_form(browser, remove, {}, form_page=base)
        assert asked.status_code == 200 and 'class="confirm-consequences"' in asked.text
        assert "Remove this add-on?" in asked.text
        assert len((await campaign_json(client, maker, draft))["add_ons"]) == 1
        removed = await post_form(browser, remove, {"confirm": "yes"}, form_page=base)
        assert removed.status_code == 303
        assert (await campaign_json(client, maker, draft))["add_ons"] == []


async def test_a_bad_add_on_form_shows_each_message_and_saves_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, _operator, draft = await a_draft(client, sessions)
    new = f"/maker/campaigns/{draft['slug']}/add-ons/new"
    async with logged_in(client, maker) as browser:
        blank = await post_form(browser, new, {"price": "0.5", "quantity_limit": "none"}, form_page=new)
        assert blank.status_code == 422, blank.text
        for field in ("offer", "price", "quantity_limit"):
            assert f'id="field-{field}-error"' in blank.text, field
        foreign = await post_form(
            browser, new, {"offer": "9b2f1a52-65c0-4b0e-8d8c-7b5e0f6a2c11", "price": "99"}, form_page=new
        )
        assert foreign.status_code == 422 and 'id="field-offer-error"' in foreign.text
    assert (await campaign_json(client, maker, draft))["add_ons"] == []


async def test_the_public_page_and_the_review_show_options_and_add_ons_in_both_languages(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, operator, draft = await a_draft(client, sessions)
    product = lamp(draft)
    variants = (
        await client.put(
            f"/api/v1/campaigns/{draft['id']}/products/{product['id']}/options",
            json={"options": [{"name": "colour", "values": ["black", "white"]}]},
            headers=maker.headers,
        )
    ).json()["variants"]
    added = await client.post(
        f"/api/v1/campaigns/{draft['id']}/add-ons",
        json={"product_id": product["id"], "variant_id": variants[1]["id"], "price": 9_900, "limit": 5},
        headers=maker.headers,
    )
    assert added.status_code == 201, added.text
    assert (await client.post(f"/api/v1/campaigns/{draft['id']}/submit", headers=maker.headers)).status_code == 200

    async with logged_in(client, operator) as browser:
        review = await browser.get(f"/operator/campaigns/{draft['slug']}")
        assert review.status_code == 200
        assert "LAMP-BLC" in review.text and "LAMP-WHT" in review.text and "Add-ons" in review.text
        chinese = await browser.get(f"/operator/campaigns/{draft['slug']}?lang=zh_CN")
        assert "附加商品" in chinese.text and "选项与款式" in chinese.text
    await approve_campaign(client, operator, draft)
    assert (await client.post(f"/api/v1/campaigns/{draft['id']}/launch", headers=maker.headers)).status_code == 200

    public = await client.get(f"/campaigns/{draft['slug']}")
    assert public.status_code == 200
    text = html.unescape(public.text)
    assert "Choices" in text and "black · white" in text
    assert "Add-ons" in text and "Desk lamp" in text and "(white)" in text and "5 of 5 left" in text
    chinese = html.unescape((await client.get(f"/campaigns/{draft['slug']}?lang=zh_CN")).text)
    assert "附加商品" in chinese and "可选款式" in chinese


async def test_the_new_maker_pages_render_in_chinese(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, _operator, draft = await a_draft(client, sessions)
    expected = {
        f"/maker/campaigns/{draft['slug']}/products/{lamp(draft)['id']}/options": "选项与款式",
        f"/maker/campaigns/{draft['slug']}/add-ons/new": "添加附加商品",
        f"/maker/campaigns/{draft['slug']}": "附加商品",
    }
    async with logged_in(client, maker) as browser:
        for path, words in expected.items():
            page = await browser.get(path + "?lang=zh_CN")
            assert page.status_code == 200 and words in page.text, path


async def test_removing_a_product_says_its_add_ons_go_with_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, _operator, draft = await a_draft(client, sessions)
    for price in (9_900, 4_900):
        added = await client.post(
            f"/api/v1/campaigns/{draft['id']}/add-ons",
            json={"product_id": lamp(draft)["id"], "price": price},
            headers=maker.headers,
        )
        assert added.status_code == 201, added.text
    base = f"/maker/campaigns/{draft['slug']}"
    remove = f"{base}/products/{lamp(draft)['id']}/remove"
    async with logged_in(client, maker) as browser:
        asked = await post_form(browser, remove, {}, form_page=base)
        assert asked.status_code == 200 and "Its 2 add-ons are removed with it." in asked.text
        removed = await post_form(browser, remove, {"confirm": "yes"}, form_page=base)
        assert removed.status_code == 303
    assert (await campaign_json(client, maker, draft))["add_ons"] == []
