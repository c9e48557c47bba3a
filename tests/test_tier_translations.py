"""Tiers and products take the maker's version in the other language, as campaigns and updates do: the campaign's
page shows each reader theirs, and the original marked with the language it is written in."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Product, Tier
from tests.helpers import create_space, drafted_campaign, launched_campaign, make_admin, sign_up
from tests.pages import logged_in, post_form


async def test_a_tier_and_a_product_in_both_languages_are_shown_in_the_readers(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    space = await create_space(client, await make_admin(sessions, await sign_up(client, "Admin")))
    maker = await sign_up(client, "Maker")
    campaign = await drafted_campaign(client, maker, space)
    base = f"/api/v1/campaigns/{campaign['id']}"
    early_bird, _pair = campaign["tiers"]
    [product] = campaign["products"]

    chinese_tier = {"zh_CN": {"title": "早鸟", "description": "最早的**一批**"}}
    patched = await client.patch(
        f"{base}/tiers/{early_bird['id']}", json={"translations": chinese_tier}, headers=maker.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["translations"] == chinese_tier and patched.json()["title"] == "Early bird"
    stranger = await client.patch(
        f"{base}/tiers/{early_bird['id']}", json={"translations": {"fr": {"title": "Lève-tôt"}}}, headers=maker.headers
    )
    assert stranger.status_code == 422 and "translations" in stranger.text

    cable = await client.post(
        f"{base}/products",
        json={
            "sku": "CABLE",
            "name": "Spare cable",
            "translations": {"zh_CN": {"name": "备用线缆"}},
            "weight_grams": 30,
            "batch_size": 500,
        },
        headers=maker.headers,
    )
    assert cable.status_code == 201 and cable.json()["translations"] == {"zh_CN": {"name": "备用线缆"}}
    add_on = {"product_id": cable.json()["id"], "price": 2_900, "tier_ids": [early_bird["id"]], "shipping": []}
    offered = await client.post(f"{base}/add-ons", json=add_on, headers=maker.headers)
    assert offered.status_code == 201, offered.text

    edit = f"/maker/campaigns/{campaign['slug']}/products/{product['id']}/edit"
    typed = {
        "sku": "SKU-A",
        "name": "Sensor",
        "weight_grams": "120",
        "unit_cost": "30.00",
        "batch_size": "500",
        "overage_percent": "0",
        "other_language": "zh_CN",
        "other_name": "土壤传感器",
    }
    async with logged_in(client, maker) as browser:
        form = (await browser.get(edit)).text
        assert 'name="other_language" value="zh_CN"' in form and 'name="other_name"' in form
        saved = await post_form(browser, edit, typed, form_page=edit)
        assert saved.status_code == 303, saved.text
        assert 'value="土壤传感器"' in (await browser.get(edit)).text
        too_long = await post_form(browser, edit, typed | {"other_name": "长" * 201}, form_page=edit)
        assert too_long.status_code == 422 and 'id="field-other_name-error"' in too_long.text
        assert "Use at most 200 characters." in too_long.text

        chinese = (await browser.get(f"/campaigns/{campaign['slug']}?lang=zh_CN")).text
        english = (await browser.get(f"/campaigns/{campaign['slug']}?lang=en")).text
    assert "早鸟" in chinese and "最早的<strong>一批</strong>" in chinese and "土壤传感器" in chinese
    assert "备用线缆" in chinese and "Spare cable" in english and "备用线缆" not in english
    # The tier with no Chinese version is shown as written, marked as English.
    assert 'lang="en">Pair' in chinese and "原文为英文" in chinese
    assert "Early bird" in english and "早鸟" not in english and "土壤传感器" not in english and "Sensor" in english
    api = (await client.get(base, headers=maker.headers)).json()
    assert api["products"][0]["translations"] == {"zh_CN": {"name": "土壤传感器"}}


async def test_a_backer_chooses_a_tier_by_its_name_in_their_language(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(client, sessions)
    early_bird = campaign["tiers"][0]["id"]
    async with sessions.begin() as session:  # as the maker gave them while it was a draft
        await session.execute(
            update(Tier).where(Tier.id == uuid.UUID(early_bird)).values(translations={"zh_CN": {"title": "早鸟"}})
        )
        await session.execute(
            update(Product)
            .where(Product.campaign_id == uuid.UUID(campaign["id"]))
            .values(translations={"zh_CN": {"name": "传感器"}})
        )
    async with logged_in(client, await sign_up(client, "Bo")) as browser:
        chinese = (await browser.get(f"/campaigns/{campaign['slug']}/back?tier={early_bird}&lang=zh_CN")).text
        english = (await browser.get(f"/campaigns/{campaign['slug']}/back?tier={early_bird}&lang=en")).text
    assert "早鸟" in chinese and "传感器" in chinese
    assert "Early bird" in english and "早鸟" not in english
