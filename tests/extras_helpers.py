"""A live campaign whose tier's lamp comes in colours, with spare cables and a poster as add-ons, made in one call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import AddOn, ProductVariant, Tier
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


@dataclass(frozen=True)
class LampCampaign:
    """Tier "Lamp" (199.00, one LAMP, ships to CN for 10.00 and "*" for 50.00, `tier_limit` slots); LAMP in black
    (limited to `black_limit`) and white; add-on "cable" (29.00, CABLE, `cable_limit`, only with the lamp tier and
    never alone, 5.00 a unit to CN, not shipped elsewhere), add-on "poster" (15.00, POSTER, ships alone, no fee of
    its own) and add-on "spare lamp" (99.00, LAMP in the colour the backer picks)."""

    json: dict[str, Any]
    maker: Actor
    lamp_tier: str
    lamp: str
    black: str
    white: str
    cable: str
    poster: str
    spare_lamp: str

    @property
    def id(self) -> str:
        return str(self.json["id"])

    def pledges_url(self) -> str:
        return f"/api/v1/campaigns/{self.id}/pledges"

    def body(self, colour: str | None = "black", cables: int = 0, country: str = "CN", **more: Any) -> dict[str, Any]:
        """A pledge of the lamp tier in `colour` with `cables` spare cables."""
        body: dict[str, Any] = {"tier_id": self.lamp_tier, "bonus": 0, "shipping_country": country}
        if colour is not None:
            body["variants"] = {self.lamp: {"colour": colour}}
        if cables:
            body["add_ons"] = [{"add_on_id": self.cable, "quantity": cables}]
        return body | more


async def lamp_campaign(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    *,
    black_limit: int | None = None,
    cable_limit: int | None = None,
    tier_limit: int | None = None,
) -> LampCampaign:
    admin = await make_admin(sessions, await sign_up(client, "Admin"))
    space = await create_space(client, admin)
    operator = await make_operator(client, admin, space)
    maker = await sign_up(client, "Maker")
    campaign = await create_campaign(client, maker, space)
    lamp = await add_product(client, maker, campaign, sku="LAMP", name="Desk lamp")
    cable = await add_product(client, maker, campaign, sku="CABLE", name="Spare cable", weight_grams=40)
    poster = await add_product(client, maker, campaign, sku="POSTER", name="Poster", weight_grams=90)
    products = f"/api/v1/campaigns/{campaign['id']}/products/{lamp['id']}"
    variants = (
        await client.put(
            f"{products}/options",
            json={"options": [{"name": "colour", "values": ["black", "white"]}]},
            headers=maker.headers,
        )
    ).json()["variants"]
    black, white = variants
    if black_limit is not None:
        limited = await client.patch(
            f"{products}/variants/{black['id']}", json={"limit": black_limit}, headers=maker.headers
        )
        assert limited.status_code == 200, limited.text
    lamp_tier = await add_tier(
        client, maker, campaign, title="Lamp", items=[{"sku": "LAMP", "quantity": 1}], quantity_limit=tier_limit
    )
    add_ons = f"/api/v1/campaigns/{campaign['id']}/add-ons"
    cable_add_on = await client.post(
        add_ons,
        json={
            "product_id": cable["id"],
            "price": 2_900,
            "limit": cable_limit,
            "tier_ids": [lamp_tier["id"]],
            "ships_alone": False,
            "shipping": [{"country": "CN", "fee": 500}],
        },
        headers=maker.headers,
    )
    assert cable_add_on.status_code == 201, cable_add_on.text
    poster_add_on = await client.post(add_ons, json={"product_id": poster["id"], "price": 1_500}, headers=maker.headers)
    assert poster_add_on.status_code == 201, poster_add_on.text
    spare_lamp = await client.post(add_ons, json={"product_id": lamp["id"], "price": 9_900}, headers=maker.headers)
    assert spare_lamp.status_code == 201, spare_lamp.text
    submitted = await client.post(f"/api/v1/campaigns/{campaign['id']}/submit", headers=maker.headers)
    assert submitted.status_code == 200, submitted.text
    await approve_campaign(client, operator, campaign)
    launched = await client.post(f"/api/v1/campaigns/{campaign['id']}/launch", headers=maker.headers)
    assert launched.status_code == 200, launched.text
    return LampCampaign(
        json=dict(launched.json()),
        maker=maker,
        lamp_tier=lamp_tier["id"],
        lamp=lamp["id"],
        black=black["id"],
        white=white["id"],
        cable=cable_add_on.json()["id"],
        poster=poster_add_on.json()["id"],
        spare_lamp=spare_lamp.json()["id"],
    )


async def units_left(sessions: async_sessionmaker[AsyncSession], campaign: LampCampaign) -> dict[str, int | None]:
    """What is left of the black lamp, the cable add-on and the lamp tier."""
    async with sessions() as session:
        black = await session.scalar(select(ProductVariant.remaining).where(ProductVariant.id == campaign.black))
        cable = await session.scalar(select(AddOn.remaining).where(AddOn.id == campaign.cable))
        tier = await session.scalar(select(Tier.remaining).where(Tier.id == campaign.lamp_tier))
    return {"black": black, "cable": cable, "tier": tier}
