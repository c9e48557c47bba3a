"""Shipping by weight: the maker chooses, while a draft, a weight table per country instead of per-item fees, and a
pledge's shipping is the bracket of its contents' total weight, at pledge time, on a change, and in the pledge
manager (where an add-on bought after the close is charged its shipping difference)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.errors import InvalidInput
from campaigns.models import Tier
from campaigns.pledges.pricing import PledgeChoice, price_pledge
from campaigns.pledges.shipping import table_of
from payments.gateway import StripeGateway
from payments.models import AddOnCharge
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.factories import address
from tests.helpers import Actor, create_campaign, many_backers
from tests.money_helpers import payment_intents, run_jobs, stripe_work
from tests.pledge_manager_helpers import CABLE_PRICE, LAMP_PRICE, A, Shop, back_lamp, fund, launched_shop

# To China: up to 160 g 8.00, up to 200 g 12.00, up to 300 g 20.00; to Japan up to 130 g; nowhere else. The lamp
# weighs 120 g, a cable 40 g, a shade 60 g. (The lamp's tier's own per-item rows ship to China only.)
TABLE = [
    {
        "country": "CN",
        "brackets": [
            {"up_to_grams": 160, "fee": 800},
            {"up_to_grams": 200, "fee": 1_200},
            {"up_to_grams": 300, "fee": 2_000},
        ],
    },
    {"country": "JP", "brackets": [{"up_to_grams": 130, "fee": 3_000}]},
]


def line_sum(pledge: dict[str, Any]) -> int:
    return sum(item["quantity"] * item["unit_amount"] for item in pledge["items"])


def refused_field(answer: httpx.Response) -> str:
    assert answer.status_code == 422, answer.text
    return str(answer.json()["errors"][0]["field"])


def test_a_package_pays_the_bracket_it_fits_in_to_the_gram_and_what_no_bracket_holds_is_refused() -> None:
    table = table_of(TABLE + [{"country": "*", "brackets": [{"up_to_grams": 1_000, "fee": 5_000}]}], {"LAMP": 120})
    assert table.fee("CN", 160) == 800  # exactly at a bracket's limit
    assert table.fee("CN", 161) == 1_200  # one gram over
    assert table.fee("CN", 300) == 2_000
    assert table.fee("DE", 1_000) == 5_000  # the rest of the world's row
    for country, grams in (("CN", 301), ("DE", 1_001)):
        with pytest.raises(InvalidInput) as refused:
            table.fee(country, grams)
        assert refused.value.errors[0].field == "shipping_country"
    with pytest.raises(InvalidInput) as nowhere:
        table_of(TABLE, {}).fee("DE", 10)
    assert nowhere.value.errors[0].field == "shipping_country"
    # Digital-only contents ask no country and cost nothing to ship, by weight too.
    note = Tier(id=uuid.uuid4(), price=500, items=[], shipping=[])
    terms = price_pledge("CNY", note, PledgeChoice(note.id), weights=table)
    assert (terms.shipping_fee, terms.amount) == (0, 500)


async def _shape_draft(client: httpx.AsyncClient, url: str, maker: Actor) -> None:
    """The maker's shipping choice, refused when wrong and taken when right."""
    shipping = f"{url}/shipping"
    shown = await client.get(shipping, headers=maker.headers)
    assert shown.status_code == 200 and (shown.json()["mode"], shown.json()["table"]) == ("per_item", [])

    def row(*brackets: tuple[int, int], country: str = "CN") -> dict[str, Any]:
        return {"country": country, "brackets": [{"up_to_grams": g, "fee": f} for g, f in brackets]}

    wrong = {
        "table.0.brackets.0.fee": [row((160, -1))],
        "table.0.brackets.0.up_to_grams": [row((-5, 800))],
        "table.0.brackets.1.up_to_grams": [row((200, 800), (160, 1_200))],
        "table.0.brackets.2.up_to_grams": [row((160, 800), (200, 1_200), (200, 1_500))],
        "table.0.brackets.1.fee": [row((160, 800), (200, 700))],
        "table.1.country": [row((160, 800)), row((300, 900))],
    }
    for field, table in wrong.items():
        answer = await client.put(shipping, json={"mode": "weight", "table": table}, headers=maker.headers)
        assert refused_field(answer) == field, (field, answer.text)
    empty = await client.put(shipping, json={"mode": "weight", "table": []}, headers=maker.headers)
    assert refused_field(empty) == "table"
    assert (await client.get(shipping, headers=maker.headers)).json()["mode"] == "per_item"  # nothing changed

    # Another draft of the maker's, priced by weight in yuan and fen, cannot move to whole Taiwan dollars.
    space = {"id": (await client.get(url, headers=maker.headers)).json()["space_id"]}
    fen = await create_campaign(client, maker, space)
    cents = {"mode": "weight", "table": [row((500, 850))]}
    assert (await client.put(f"{A}/campaigns/{fen['id']}/shipping", json=cents, headers=maker.headers)).is_success
    moved = await client.patch(f"{A}/campaigns/{fen['id']}", json={"currency": "TWD"}, headers=maker.headers)
    assert refused_field(moved) == "currency" and "weight table" in moved.json()["errors"][0]["message"]

    chosen = await client.put(shipping, json={"mode": "weight", "table": TABLE}, headers=maker.headers)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json() == {"campaign_id": url.rsplit("/", 1)[1], "currency": "CNY", "mode": "weight", "table": TABLE}


async def weighed_shop(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> Shop:
    async def shape(url: str, maker: Actor) -> None:
        await _shape_draft(client, url, maker)

    return await launched_shop(client, sessions, cables=10, before_submit=shape)


async def test_a_pledge_ships_at_its_contents_weight_bracket_when_made_changed_and_added_to(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await weighed_shop(stripe_client, sessions)
    campaign_url = f"{A}/campaigns/{shop.campaign['id']}"
    [lamp_backer, cable_backer, note_backer] = await many_backers(sessions, 3)
    black = {shop.lamp["id"]: {"colour": "black"}}
    cable = {"add_on_id": shop.cable["id"]}
    shade = {"add_on_id": shop.shade["id"], "variant": {"colour": "black"}}

    async def pledge(backer: Actor, **body: Any) -> httpx.Response:
        return await stripe_client.post(f"{campaign_url}/pledges", json=body, headers=backer.headers)

    # The lamp alone, 120 g: the first bracket.
    alone = await pledge(lamp_backer, tier_id=shop.tier_id, shipping_country="CN", variants=black)
    assert alone.status_code == 201, alone.text
    assert (alone.json()["shipping_fee"], alone.json()["amount"]) == (800, LAMP_PRICE + 800)
    # The lamp and a cable, 160 g: exactly at the first bracket's limit, so still 8.00 (the cable's own 5.00 is
    # the per-item fee, not used by weight).
    at_limit = await pledge(cable_backer, tier_id=shop.tier_id, shipping_country="CN", variants=black, add_ons=[cable])
    assert at_limit.status_code == 201, at_limit.text
    assert at_limit.json()["shipping_fee"] == 800 and at_limit.json()["amount"] == line_sum(at_limit.json())
    # Five cables more (320 g) is over the top bracket; Germany has no row: both name the country.
    heavy = await pledge(
        note_backer, tier_id=shop.tier_id, shipping_country="CN", variants=black, add_ons=[cable | {"quantity": 5}]
    )
    assert refused_field(heavy) == "shipping_country"
    assert "300 g" in heavy.json()["errors"][0]["message"]
    elsewhere = await pledge(note_backer, tier_id=shop.tier_id, shipping_country="DE", variants=black)
    assert refused_field(elsewhere) == "shipping_country"
    # Nothing to ship (a pledge without a reward): no address asked, no shipping.
    note = await pledge(note_backer, tier_id=None, bonus=500)
    assert note.status_code == 201, note.text
    assert (note.json()["shipping_fee"], note.json()["amount"]) == (0, 500)
    # By weight every add-on is in a package: a pledge that ships nothing has no country to weigh one for.
    boxless = await stripe_client.post(
        f"{A}/pledges/{note.json()['id']}/items", json=cable, headers=note_backer.headers
    )
    assert refused_field(boxless) == "add_on_id"

    # A change re-weighs: the lamp and a shade, 180 g, is the second bracket.
    pledge_url = f"{A}/pledges/{alone.json()['id']}"
    changed = await stripe_client.patch(
        pledge_url,
        json={"tier_id": shop.tier_id, "shipping_country": "CN", "variants": black, "add_ons": [shade]},
        headers=lamp_backer.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["shipping_fee"] == 1_200 and changed.json()["amount"] == LAMP_PRICE + 1_900 + 1_200
    # So does the pledge manager while live: a cable more (220 g) is the third bracket, and leaving goes back.
    added = await stripe_client.post(f"{pledge_url}/items", json=cable, headers=lamp_backer.headers)
    assert added.status_code == 201, added.text
    assert added.json()["shipping_fee"] == 2_000 and added.json()["amount"] == line_sum(added.json())
    cable_line = added.json()["items"][-1]["id"]
    gone = await stripe_client.delete(f"{pledge_url}/items/{cable_line}", headers=lamp_backer.headers)
    assert gone.status_code == 200, gone.text
    assert gone.json()["shipping_fee"] == 1_200 and gone.json()["amount"] == LAMP_PRICE + 1_900 + 1_200
    too_many = await stripe_client.post(
        f"{pledge_url}/items", json=cable | {"quantity": 4}, headers=lamp_backer.headers
    )
    assert refused_field(too_many) == "shipping_country"

    # Once launched, the choice is the one the space reviewed.
    late = await stripe_client.put(
        f"{campaign_url}/shipping", json={"mode": "per_item", "table": []}, headers=shop.maker.headers
    )
    assert late.status_code == 409 and late.json()["type"] == "not-draft", late.text
    public = await stripe_client.get(f"{campaign_url}/shipping")
    assert public.status_code == 200 and public.json()["table"] == TABLE

    paths = (await stripe_client.get(f"{A}/openapi.json")).json()["paths"]
    put = paths["/api/v1/campaigns/{campaign_id}/shipping"]["put"]["responses"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(put)


async def test_an_add_on_bought_after_funding_is_charged_its_price_and_the_shipping_difference_of_its_weight(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    shop = await weighed_shop(stripe_client, sessions)
    [backer] = await many_backers(sessions, 1)
    pledge = await back_lamp(stripe_client, stripe_server, shop, backer)
    assert pledge["shipping_fee"] == 800
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)
    items = f"{A}/pledges/{pledge['id']}/items"
    # The address goes where the table ships the contents (Japan takes the lamp alone, its dearer shipping charged
    # and refunded again on the way back: tests/test_address_reprice.py), not elsewhere.
    address_url = f"{A}/pledges/{pledge['id']}/address"
    japan = await stripe_client.put(address_url, json=address("JP", postal_code="100-0001"), headers=backer.headers)
    assert japan.status_code == 200, japan.text
    germany = await stripe_client.put(address_url, json=address("DE", postal_code="10115"), headers=backer.headers)
    assert refused_field(germany) == "country"
    china = await stripe_client.put(address_url, json=address(), headers=backer.headers)
    assert china.status_code == 200, china.text

    # A first cable: 160 g still fits the paid bracket, so only its price is charged.
    first = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=backer.headers)
    assert first.status_code == 201, first.text
    [intent] = await payment_intents(stripe_server, pledge_item_id=first.json()["items"][-1]["id"])
    assert (intent["amount"], intent["status"]) == (CABLE_PRICE, "succeeded")
    assert first.json()["shipping_fee"] == 800
    heavier = await stripe_client.put(address_url, json=address("JP", postal_code="100-0001"), headers=backer.headers)
    assert refused_field(heavier) == "country" and "130 g" in heavier.json()["errors"][0]["message"]
    # A second: 200 g is the next bracket, 4.00 more, charged with it.
    second = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=backer.headers)
    assert second.status_code == 201, second.text
    second_line = second.json()["items"][-1]["id"]
    [intent] = await payment_intents(stripe_server, pledge_item_id=second_line)
    assert (intent["amount"], intent["status"]) == (CABLE_PRICE + 400, "succeeded")
    body = second.json()
    assert body["shipping_fee"] == 1_200 and body["amount"] == line_sum(body) == LAMP_PRICE + 1_200 + 2 * CABLE_PRICE

    # Given back, it is refunded with the shipping it added; the pledge's shipping is the lighter bracket again.
    gone = await stripe_client.delete(f"{items}/{second_line}", headers=backer.headers)
    assert gone.status_code == 200, gone.text
    assert gone.json()["shipping_fee"] == 800 and gone.json()["amount"] == line_sum(gone.json())
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    async with httpx.AsyncClient(base_url=stripe_server.api_base, auth=(stripe_server.secret_key, "")) as http:
        paid = (await http.get(f"/v1/payment_intents/{intent['id']}")).json()["latest_charge"]
        paid = paid if isinstance(paid, dict) else (await http.get(f"/v1/charges/{paid}")).json()
    assert paid["amount_refunded"] == CABLE_PRICE + 400

    # A purchase still being charged counts: the next add-on pays the bracket their weights reach together.
    async with sessions.begin() as session:
        paid_charge = await session.scalar(
            select(AddOnCharge)
            .where(AddOnCharge.pledge_id == uuid.UUID(pledge["id"]), AddOnCharge.add_on_id.is_not(None))
            .limit(1)
        )
        assert paid_charge is not None
        in_flight = uuid.uuid4()
        session.add(
            AddOnCharge(
                pledge_id=paid_charge.pledge_id,
                item_id=in_flight,
                add_on_id=paid_charge.add_on_id,
                sku="CABLE",
                quantity=1,
                unit_amount=CABLE_PRICE,
                shipping_fee=400,
                idempotency_key=f"pledge-item:{in_flight}:charge",
                amount=CABLE_PRICE + 400,
                currency="CNY",
                customer_id=paid_charge.customer_id,
                payment_method_id=paid_charge.payment_method_id,
                status="started",
            )
        )
    third = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=backer.headers)
    assert third.status_code == 201, third.text
    [intent] = await payment_intents(stripe_server, pledge_item_id=third.json()["items"][-1]["id"])
    assert intent["amount"] == CABLE_PRICE + 2_000 - 800 - 400  # 240 g with the one in flight
