"""A product's options and its variant SKUs, through the JSON API."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.campaign_schemas import MAX_VARIANTS
from tests.helpers import Actor, add_product, create_campaign, create_space, launched_campaign, make_admin, sign_up

COLOUR_AND_PLUG = [{"name": "colour", "values": ["black", "white"]}, {"name": "plug", "values": ["EU", "US", "CN"]}]


async def lamp_draft(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> tuple[Actor, dict[str, Any], dict[str, Any]]:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space)
    product = await add_product(client, maker, campaign, sku="LAMP", name="Desk lamp")
    return maker, campaign, product


def options_url(campaign: dict[str, Any], product: dict[str, Any]) -> str:
    return f"/api/v1/campaigns/{campaign['id']}/products/{product['id']}/options"


def bad_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {error["field"] for error in response.json()["errors"]}


async def test_each_combination_of_a_products_options_is_a_variant_with_a_derived_sku(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, campaign, product = await lamp_draft(client, sessions)
    answer = await client.put(options_url(campaign, product), json={"options": COLOUR_AND_PLUG}, headers=maker.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["options"] == COLOUR_AND_PLUG
    assert [(v["choice"], v["sku"]) for v in body["variants"]] == [
        ({"colour": "black", "plug": "EU"}, "LAMP-BLC-EU"),
        ({"colour": "black", "plug": "US"}, "LAMP-BLC-US"),
        ({"colour": "black", "plug": "CN"}, "LAMP-BLC-CN"),
        ({"colour": "white", "plug": "EU"}, "LAMP-WHT-EU"),
        ({"colour": "white", "plug": "US"}, "LAMP-WHT-US"),
        ({"colour": "white", "plug": "CN"}, "LAMP-WHT-CN"),
    ]
    assert all(v["limit"] is None and v["remaining"] is None for v in body["variants"])

    shown = (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()
    assert shown["products"][0]["options"] == COLOUR_AND_PLUG
    assert [v["sku"] for v in shown["products"][0]["variants"]] == [v["sku"] for v in body["variants"]]


async def test_a_value_with_no_latin_letters_is_numbered_in_the_sku(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, campaign, product = await lamp_draft(client, sessions)
    options = [{"name": "颜色", "values": ["黑色", "白色"]}]
    answer = await client.put(options_url(campaign, product), json={"options": options}, headers=maker.headers)
    assert answer.status_code == 200, answer.text
    assert [v["sku"] for v in answer.json()["variants"]] == ["LAMP-1", "LAMP-2"]


async def test_changing_the_options_keeps_the_variants_still_possible_with_their_sku_and_limit(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, campaign, product = await lamp_draft(client, sessions)
    colours = [{"name": "colour", "values": ["black", "white"]}]
    first = (await client.put(options_url(campaign, product), json={"options": colours}, headers=maker.headers)).json()
    black = first["variants"][0]
    edited = await client.patch(
        f"/api/v1/campaigns/{campaign['id']}/products/{product['id']}/variants/{black['id']}",
        json={"sku": "LAMP-NOIR", "limit": 40},
        headers=maker.headers,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json() | {"id": None} == {
        "id": None,
        "choice": {"colour": "black"},
        "sku": "LAMP-NOIR",
        "limit": 40,
        "remaining": 40,
    }

    more = [{"name": "colour", "values": ["black", "red"]}]
    second = await client.put(options_url(campaign, product), json={"options": more}, headers=maker.headers)
    assert second.status_code == 200, second.text
    assert [(v["id"] == black["id"], v["sku"], v["limit"]) for v in second.json()["variants"]] == [
        (True, "LAMP-NOIR", 40),
        (False, "LAMP-RED", None),
    ]

    none = await client.put(options_url(campaign, product), json={"options": []}, headers=maker.headers)
    assert none.status_code == 200 and none.json()["variants"] == [] and none.json()["options"] == []


async def test_a_limit_can_be_lifted_and_a_variant_sku_is_unique_among_products_and_variants(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, campaign, product = await lamp_draft(client, sessions)
    await add_product(client, maker, campaign, sku="SHADE", name="Shade")
    colours = [{"name": "colour", "values": ["black", "white"]}]
    variants = (
        await client.put(options_url(campaign, product), json={"options": colours}, headers=maker.headers)
    ).json()["variants"]
    url = f"/api/v1/campaigns/{campaign['id']}/products/{product['id']}/variants"

    for taken in ("SHADE", variants[1]["sku"]):
        clash = await client.patch(f"{url}/{variants[0]['id']}", json={"sku": taken}, headers=maker.headers)
        assert clash.status_code == 409 and clash.json()["type"] == "sku-taken", clash.text
    same_as_variant = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/products",
        json={"sku": variants[0]["sku"], "name": "Clash", "weight_grams": 1, "batch_size": 10},
        headers=maker.headers,
    )
    assert same_as_variant.status_code == 409 and same_as_variant.json()["type"] == "sku-taken"

    limited = await client.patch(f"{url}/{variants[0]['id']}", json={"limit": 5}, headers=maker.headers)
    assert limited.json()["remaining"] == 5
    lifted = await client.patch(f"{url}/{variants[0]['id']}", json={"limit": None}, headers=maker.headers)
    assert lifted.status_code == 200 and lifted.json()["limit"] is None and lifted.json()["remaining"] is None


async def test_bad_options_are_refused_naming_the_field_and_change_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, campaign, product = await lamp_draft(client, sessions)
    url = options_url(campaign, product)
    too_many = [{"name": f"o{i}", "values": ["a", "b", "c", "d", "e"]} for i in range(3)]  # 125 combinations
    assert MAX_VARIANTS < 5**3
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([{"name": "", "values": ["black"]}], "options.0.name"),
        ([{"name": "  ", "values": ["black"]}], "options.0.name"),
        ([{"name": "colour", "values": ["black", "Black"]}], "options.0.values"),
        ([{"name": "colour", "values": []}], "options.0.values"),
        ([{"name": "colour", "values": ["black", ""]}], "options.0.values.1"),
        ([{"name": "colour", "values": ["a"]}, {"name": "Colour", "values": ["b"]}], "options"),
        (too_many, "options"),
    ]
    for options, field in cases:
        answer = await client.put(url, json={"options": options}, headers=maker.headers)
        assert field in bad_fields(answer), (options, answer.text)
    assert "100" in (await client.put(url, json={"options": too_many}, headers=maker.headers)).text
    shown = (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()
    assert shown["products"][0]["options"] == [] and shown["products"][0]["variants"] == []


async def test_a_live_campaigns_options_cannot_change(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    live, maker, _operator = await launched_campaign(client, sessions)
    product = live["products"][0]
    answer = await client.put(
        options_url(live, product), json={"options": [{"name": "colour", "values": ["red"]}]}, headers=maker.headers
    )
    assert answer.status_code == 409, answer.text
    assert (await client.get(f"/api/v1/campaigns/{live['id']}")).json()["products"][0]["variants"] == []


async def test_a_campaign_without_options_or_add_ons_shows_them_as_empty_lists_to_the_public(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    live, _maker, _operator = await launched_campaign(client, sessions)
    shown = (await client.get(f"/api/v1/campaigns/{live['id']}")).json()
    assert shown["products"][0]["unit_cost"] is None
    assert shown["products"][0]["options"] == [] and shown["products"][0]["variants"] == []
    assert shown["add_ons"] == []
