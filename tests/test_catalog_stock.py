"""Limited variants and add-ons never give out more units than the maker offered, however many take at once; and the
campaign's SKUs, as the batch planner will count them, include its variants."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import AddOn, ProductVariant
from campaigns.stock import Limited, UnitsSoldOut, give_back_units, take_units
from campaigns.variants import campaign_skus
from tests.helpers import add_product, create_campaign, create_space, make_admin, sign_up

LIMIT = 7
TAKERS = 40


async def lamp_with_add_on(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """A draft whose LAMP comes in black and white (black limited to LIMIT) beside a plain BULB, and an add-on of the
    white lamp limited to LIMIT; returns the campaign json."""
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space)
    lamp = await add_product(client, maker, campaign, sku="LAMP", name="Desk lamp")
    await add_product(client, maker, campaign, sku="BULB", name="Bulb")
    products = f"/api/v1/campaigns/{campaign['id']}/products/{lamp['id']}"
    variants = (
        await client.put(
            f"{products}/options",
            json={"options": [{"name": "colour", "values": ["black", "white"]}]},
            headers=maker.headers,
        )
    ).json()["variants"]
    limited = await client.patch(
        f"{products}/variants/{variants[0]['id']}", json={"limit": LIMIT}, headers=maker.headers
    )
    assert limited.status_code == 200, limited.text
    add_on = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/add-ons",
        json={"product_id": lamp["id"], "variant_id": variants[1]["id"], "price": 9_900, "limit": LIMIT},
        headers=maker.headers,
    )
    assert add_on.status_code == 201, add_on.text
    return dict((await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=maker.headers)).json())


async def take_at_once(sessions: async_sessionmaker[AsyncSession], model: Limited, row_id: uuid.UUID) -> list[bool]:
    async def take_one() -> bool:
        try:
            async with sessions.begin() as session:
                await take_units(session, model, row_id)
        except UnitsSoldOut:
            return False
        return True

    return await asyncio.gather(*(take_one() for _ in range(TAKERS)))


@pytest.mark.parametrize("kind", ["variant", "add-on"])
async def test_many_backers_taking_a_limited_variant_or_add_on_at_once_never_oversell_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], kind: str
) -> None:
    campaign = await lamp_with_add_on(client, sessions)
    model: Limited
    if kind == "variant":
        model, row_id = ProductVariant, uuid.UUID(campaign["products"][0]["variants"][0]["id"])
    else:
        model, row_id = AddOn, uuid.UUID(campaign["add_ons"][0]["id"])

    taken = await take_at_once(sessions, model, row_id)

    assert taken.count(True) == LIMIT, taken
    async with sessions() as session:
        row = await session.get_one(model, row_id)
        assert row.remaining == 0


async def test_units_given_back_can_be_taken_again_but_never_above_the_limit(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign = await lamp_with_add_on(client, sessions)
    black = uuid.UUID(campaign["products"][0]["variants"][0]["id"])
    white = uuid.UUID(campaign["products"][0]["variants"][1]["id"])
    async with sessions.begin() as session:
        assert await take_units(session, ProductVariant, black, LIMIT) == 0
        with pytest.raises(UnitsSoldOut):
            await take_units(session, ProductVariant, black)
        await give_back_units(session, ProductVariant, black, 2)
        assert await take_units(session, ProductVariant, black) == 1
        await give_back_units(session, ProductVariant, black, LIMIT + 5)
        assert (await session.get_one(ProductVariant, black)).remaining == LIMIT
        # The white lamp has no limit of its own: it always has units, and nothing is counted.
        assert await take_units(session, ProductVariant, white, 1_000) is None


async def test_a_campaigns_skus_name_each_variant_in_place_of_its_product(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign = await lamp_with_add_on(client, sessions)
    async with sessions() as session:
        skus = await campaign_skus(session, uuid.UUID(campaign["id"]))
    assert [(sku.sku, sku.product.sku, sku.choice) for sku in skus] == [
        ("LAMP-BLC", "LAMP", {"colour": "black"}),
        ("LAMP-WHT", "LAMP", {"colour": "white"}),
        ("BULB", "BULB", {}),
    ]
