"""Add-ons: a campaign's product offered alone at a price, through the JSON API."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.helpers import (
    Actor,
    add_product,
    add_tier,
    create_campaign,
    create_space,
    launched_campaign,
    make_admin,
    sign_up,
)


async def draft_with_products(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], **fields: Any
) -> tuple[Actor, dict[str, Any], dict[str, Any]]:
    """A draft with products SKU-A (in its tier) and CABLE, and a tier; returns (maker, campaign json, space)."""
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space, **fields)
    await add_product(client, maker, campaign)
    await add_product(client, maker, campaign, sku="CABLE", name="Spare cable", weight_grams=40)
    await add_tier(client, maker, campaign)
    shown = await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)
    return maker, shown.json(), space


def cable(campaign: dict[str, Any]) -> dict[str, Any]:
    return next(product for product in campaign["products"] if product["sku"] == "CABLE")


def bad_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {error["field"] for error in response.json()["errors"]}


async def test_a_maker_offers_a_spare_part_alone_and_the_campaign_lists_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, campaign, _space = await draft_with_products(client, sessions)
    tier = campaign["tiers"][0]
    body = {
        "product_id": cable(campaign)["id"],
        "price": 2_900,
        "limit": 50,
        "tier_ids": [tier["id"]],
        "ships_alone": False,
        "shipping": [{"country": "CN", "fee": 500}, {"country": "*", "fee": 1_500}],
    }
    created = await client.post(f"/api/v1/campaigns/{campaign['id']}/add-ons", json=body, headers=maker.headers)
    assert created.status_code == 201, created.text
    add_on = created.json()
    assert add_on | {"id": None} == {
        "id": None,
        "product_id": cable(campaign)["id"],
        "variant_id": None,
        "sku": "CABLE",
        "name": "Spare cable",
        "price": 2_900,
        "limit": 50,
        "remaining": 50,
        "tier_ids": [tier["id"]],
        "ships_alone": False,
        "shipping": [{"country": "CN", "fee": 500}, {"country": "*", "fee": 1_500}],
        "position": 0,
    }
    shown = (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()
    assert shown["add_ons"] == [add_on]


async def test_an_add_on_can_be_a_fixed_variant_and_is_changed_and_removed_while_a_draft(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, campaign, _space = await draft_with_products(client, sessions)
    product = cable(campaign)
    variants = (
        await client.put(
            f"/api/v1/campaigns/{campaign['id']}/products/{product['id']}/options",
            json={"options": [{"name": "length", "values": ["1m", "2m"]}]},
            headers=maker.headers,
        )
    ).json()["variants"]
    url = f"/api/v1/campaigns/{campaign['id']}/add-ons"
    created = await client.post(
        url, json={"product_id": product["id"], "variant_id": variants[1]["id"], "price": 3_900}, headers=maker.headers
    )
    assert created.status_code == 201, created.text
    assert (created.json()["sku"], created.json()["name"]) == ("CABLE-2M", "Spare cable (2m)")
    assert created.json()["limit"] is None and created.json()["ships_alone"] is True

    add_on_url = f"{url}/{created.json()['id']}"
    changed = await client.patch(add_on_url, json={"variant_id": None, "limit": 3}, headers=maker.headers)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["sku"], changed.json()["limit"], changed.json()["remaining"]) == ("CABLE", 3, 3)

    removed = await client.delete(add_on_url, headers=maker.headers)
    assert removed.status_code == 204
    assert (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()["add_ons"] == []
    assert (await client.delete(add_on_url, headers=maker.headers)).status_code == 404


async def test_an_add_on_of_another_campaigns_product_variant_or_tier_is_refused_naming_the_field(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, campaign, space = await draft_with_products(client, sessions)
    other = await create_campaign(client, maker, space)
    other_product = await add_product(client, maker, other, sku="OTHER")
    other_variant = (
        await client.put(
            f"/api/v1/campaigns/{other['id']}/products/{other_product['id']}/options",
            json={"options": [{"name": "colour", "values": ["red"]}]},
            headers=maker.headers,
        )
    ).json()["variants"][0]
    other_tier = await add_tier(client, maker, other, items=[{"sku": "OTHER", "quantity": 1}])
    url = f"/api/v1/campaigns/{campaign['id']}/add-ons"
    own = cable(campaign)["id"]
    cases = [
        ({"product_id": other_product["id"], "price": 100}, "product_id"),
        ({"product_id": own, "variant_id": other_variant["id"], "price": 100}, "variant_id"),
        ({"product_id": own, "tier_ids": [other_tier["id"]], "price": 100}, "tier_ids"),
        ({"product_id": own, "price": 0}, "price"),
        ({"product_id": own, "price": 25.5}, "price"),
        ({"product_id": own, "price": 100, "limit": 0}, "limit"),
        ({"product_id": own, "price": 100, "shipping": [{"country": "XX", "fee": 1}]}, "shipping.0.country"),
        ({"product_id": own, "price": 100, "ships_alone": "no"}, "ships_alone"),
    ]
    for body, field in cases:
        answer = await client.post(url, json=body, headers=maker.headers)
        assert field in bad_fields(answer), (body, answer.text)
    shown = (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()
    assert shown["add_ons"] == []


async def test_an_add_on_price_follows_the_currencys_rules_like_a_tier_price(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, campaign, _space = await draft_with_products(client, sessions, currency="JPY", goal=1_000_000)
    url = f"/api/v1/campaigns/{campaign['id']}/add-ons"
    too_small = await client.post(url, json={"product_id": cable(campaign)["id"], "price": 10}, headers=maker.headers)
    assert "price" in bad_fields(too_small)
    fine = await client.post(url, json={"product_id": cable(campaign)["id"], "price": 1_500}, headers=maker.headers)
    assert fine.status_code == 201, fine.text


async def test_a_campaign_cannot_change_to_a_currency_its_add_ons_do_not_fit(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    maker, campaign, _space = await draft_with_products(client, sessions)
    fen = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/add-ons",
        json={"product_id": cable(campaign)["id"], "price": 25_050},
        headers=maker.headers,
    )
    assert fen.status_code == 201, fen.text
    # Forints are taken whole: CNY 250.50 has no forint equivalent in the same minor units.
    answer = await client.patch(f"/api/v1/campaigns/{campaign['id']}", json={"currency": "HUF"}, headers=maker.headers)
    assert bad_fields(answer) == {"currency"}
    shown = (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json()
    assert shown["currency"] == "CNY"


async def test_a_live_campaigns_add_ons_cannot_change(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    live, maker, _operator = await launched_campaign(client, sessions)
    answer = await client.post(
        f"/api/v1/campaigns/{live['id']}/add-ons",
        json={"product_id": live["products"][0]["id"], "price": 2_000},
        headers=maker.headers,
    )
    assert answer.status_code == 409, answer.text
    assert (await client.get(f"/api/v1/campaigns/{live['id']}")).json()["add_ons"] == []


async def test_the_openapi_document_lists_the_catalog_routes_with_their_error_statuses(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    expected = {
        ("put", "/api/v1/campaigns/{campaign_id}/products/{product_id}/options"): {"200", "403", "404", "409", "422"},
        ("patch", "/api/v1/campaigns/{campaign_id}/products/{product_id}/variants/{variant_id}"): {"200", "409", "422"},
        ("post", "/api/v1/campaigns/{campaign_id}/add-ons"): {"201", "401", "403", "404", "409", "422"},
        ("patch", "/api/v1/campaigns/{campaign_id}/add-ons/{add_on_id}"): {"200", "403", "409", "422"},
        ("delete", "/api/v1/campaigns/{campaign_id}/add-ons/{add_on_id}"): {"204", "403", "404", "409"},
    }
    for (method, path), statuses in expected.items():
        assert statuses <= set(paths[path][method]["responses"]), (method, path, paths[path][method]["responses"])
    assert "at most 100" in paths["/api/v1/campaigns/{campaign_id}/products/{product_id}/options"]["put"]["summary"]
