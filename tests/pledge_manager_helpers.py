"""Arrangements the pledge manager's tests share: a live campaign whose lamp comes in two colours, with add-ons,
backed and funded on localstripe."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payments.gateway import StripeGateway
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import (
    Actor,
    add_product,
    add_tier,
    approve_campaign,
    create_campaign,
    create_space,
    make_admin,
    make_operator,
    sign_up,
)
from tests.money_helpers import pass_deadline, run_jobs, save_card, stripe_work, sweep

A = "/api/v1"
LAMP_PRICE, CABLE_PRICE, CABLE_SHIPPING_CN = 39_900, 2_900, 500


@dataclass
class Shop:
    campaign: dict[str, Any]
    maker: Actor
    cable: dict[str, Any]  # an add-on: a spare cable, limited, shipped for 5.00 to CN
    shade: dict[str, Any]  # an add-on whose colour the backer chooses
    lamp: dict[str, Any]  # the tier's product, in black or white (white limited to `white_limit`)
    variants: dict[str, dict[str, Any]]  # the lamp's variants by colour

    @property
    def tier_id(self) -> str:
        return str(self.campaign["tiers"][0]["id"])


async def launched_shop(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    *,
    cables: int = 5,
    white_limit: int = 2,
    goal: int = 30_000,
    before_submit: Callable[[str, Actor], Awaitable[None]] | None = None,
) -> Shop:
    """A live campaign with one tier, "Lamp" (399.00, shipped to CN for 10.00), whose lamp (120 g) comes in black or
    white, and two add-ons: a spare cable (40 g; 29.00 + 5.00 shipping to CN, `cables` of them) and a shade (60 g)
    in a chosen colour. `before_submit(campaign url, maker)` shapes the draft further before it is submitted."""
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space, goal=goal)
    url = f"{A}/campaigns/{campaign['id']}"
    lamp = await add_product(client, maker, campaign, sku="LAMP", name="Desk lamp")
    cable = await add_product(client, maker, campaign, sku="CABLE", name="Spare cable", weight_grams=40)
    shade = await add_product(client, maker, campaign, sku="SHADE", name="Shade", weight_grams=60)
    colours = {"options": [{"name": "colour", "values": ["black", "white"]}]}
    for product in (lamp, shade):
        answer = await client.put(f"{url}/products/{product['id']}/options", json=colours, headers=maker.headers)
        assert answer.status_code == 200, answer.text
    shown = (await client.get(url, headers=maker.headers)).json()
    [lamp_shown] = [product for product in shown["products"] if product["sku"] == "LAMP"]
    lamp_variants = {variant["choice"]["colour"]: variant for variant in lamp_shown["variants"]}
    limited = await client.patch(
        f"{url}/products/{lamp['id']}/variants/{lamp_variants['white']['id']}",
        json={"limit": white_limit},
        headers=maker.headers,
    )
    assert limited.status_code == 200, limited.text
    await add_tier(
        client,
        maker,
        campaign,
        title="Lamp",
        price=LAMP_PRICE,
        items=[{"sku": "LAMP", "quantity": 1}],
        shipping=[{"country": "CN", "fee": 1_000}],
    )
    add_ons = {}
    for product, body in (
        (cable, {"price": CABLE_PRICE, "limit": cables, "shipping": [{"country": "CN", "fee": CABLE_SHIPPING_CN}]}),
        (shade, {"price": 1_900}),
    ):
        made = await client.post(f"{url}/add-ons", json={"product_id": product["id"], **body}, headers=maker.headers)
        assert made.status_code == 201, made.text
        add_ons[product["sku"]] = made.json()
    if before_submit is not None:
        await before_submit(url, maker)
    assert (await client.post(f"{url}/submit", headers=maker.headers)).status_code == 200
    await approve_campaign(client, operator, campaign)
    launched = await client.post(f"{url}/launch", headers=maker.headers)
    assert launched.status_code == 200, launched.text
    return Shop(launched.json(), maker, add_ons["CABLE"], add_ons["SHADE"], lamp, lamp_variants)


async def back_lamp(
    client: httpx.AsyncClient, stripe: EmbeddedStripe, shop: Shop, backer: Actor, *, colour: str = "black"
) -> dict[str, Any]:
    """An active pledge for the lamp in `colour`, shipped to CN, its card saved."""
    created = await client.post(
        f"{A}/campaigns/{shop.campaign['id']}/pledges",
        json={"tier_id": shop.tier_id, "shipping_country": "CN", "variants": {shop.lamp["id"]: {"colour": colour}}},
        headers=backer.headers,
    )
    assert created.status_code == 201, created.text
    await save_card(stripe, created.json()["payment"]["client_secret"])
    confirmed = await client.post(f"{A}/pledges/{created.json()['id']}/confirm", headers=backer.headers)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "active", confirmed.text
    return dict(confirmed.json())


async def fund(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    settings: Settings,
    jobs: ListSender,
    shop: Shop,
) -> None:
    await pass_deadline(sessions, shop.campaign["id"])
    await sweep(sessions, settings, jobs)
    async with stripe_work(sessions, engine, gateway, settings, jobs) as work:
        await run_jobs(work, jobs)
    shown = await client.get(f"{A}/campaigns/{shop.campaign['id']}")
    assert shown.json()["status"] == "funded", shown.text
