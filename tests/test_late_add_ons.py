"""Late add-ons: the maker keeps add-ons on sale after the deadline beside the late rewards (same or new price,
optional limit), chosen in the draft; a pre-order may include them, each at its late price, its late units taken in
the pre-order's transaction (the last one goes to one buyer), paid in the same PaymentIntent and given back when the
pre-order is given up."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.late_pledges import LateAddOn
from campaigns.models import AddOn, Pledge
from payments.gateway import StripeGateway
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import Actor, many_backers
from tests.money_helpers import pledge_row, sweep
from tests.pages import logged_in, post_form
from tests.pledge_manager_helpers import CABLE_SHIPPING_CN, A, back_lamp, fund, launched_shop
from tests.test_preorders import LATE_PRICE, SHIPPING_CN, pay_in_browser

LATE_CABLE = 2_500


async def left_of(sessions: async_sessionmaker[AsyncSession], add_on_id: str) -> tuple[int | None, int | None]:
    """(late units left, the add-on's own units left) of one add-on."""
    async with sessions() as session:
        late = await session.get_one(LateAddOn, uuid.UUID(add_on_id), populate_existing=True)
        own = await session.get_one(AddOn, uuid.UUID(add_on_id), populate_existing=True)
    return late.remaining, own.remaining


async def test_a_preorder_takes_a_late_add_on_at_its_late_price_and_the_last_one_goes_to_one_buyer(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    client = stripe_client
    seen: dict[str, Any] = {}

    async def choose_late_pledges(url: str, maker: Actor) -> None:
        draft = (await client.get(url, headers=maker.headers)).json()
        tier_id = draft["tiers"][0]["id"]
        cable, shade = (one["id"] for one in draft["add_ons"])
        late = f"{url}/late-pledges"
        tier = {"tier_id": tier_id, "price": LATE_PRICE}
        for add_ons, field in (
            ([{"add_on_id": str(uuid.uuid4())}], "add_ons[0].add_on_id"),
            ([{"add_on_id": cable}, {"add_on_id": cable}], "add_ons[1].add_on_id"),
            ([{"add_on_id": cable, "price": 0}], "add_ons.0.price"),
            ([{"add_on_id": cable, "price": 1}], "add_ons[0].price"),
            ([{"add_on_id": cable, "quantity_limit": 0}], "add_ons.0.quantity_limit"),
        ):
            refused = await client.put(late, json={"tiers": [tier], "add_ons": add_ons}, headers=maker.headers)
            assert refused.status_code == 422, (add_ons, refused.text)
            assert refused.json()["errors"][0]["field"] == field, refused.json()
        assert (await client.get(late, headers=maker.headers)).json()["add_ons"] == []
        chosen = await client.put(
            late,
            json={"tiers": [tier], "add_ons": [{"add_on_id": cable, "price": LATE_CABLE, "quantity_limit": 1}]},
            headers=maker.headers,
        )
        assert chosen.status_code == 200, chosen.text
        assert [
            (a["name"], a["price"], a["quantity_limit"], a["remaining"], a["open"]) for a in chosen.json()["add_ons"]
        ] == [("Spare cable", LATE_CABLE, 1, 1, False)]
        seen.update(cable=cable, shade=shade)

    shop = await launched_shop(client, sessions, before_submit=choose_late_pledges)
    frozen = await client.put(
        f"{A}/campaigns/{shop.campaign['id']}/late-pledges",
        json={"tiers": [], "add_ons": []},
        headers=shop.maker.headers,
    )
    assert frozen.status_code == 409 and frozen.json()["type"] == "not-draft"
    backer, first, second, third = await many_backers(sessions, 4)
    await back_lamp(client, stripe_server, shop, backer)
    await fund(client, sessions, engine, gateway, stripe_settings, jobs, shop)
    late_url = f"{A}/campaigns/{shop.campaign['id']}/late-pledges"
    [offered] = (await client.get(late_url)).json()["add_ons"]
    assert (offered["add_on_id"], offered["remaining"], offered["open"]) == (seen["cable"], 1, True)

    preorders = f"{A}/campaigns/{shop.campaign['id']}/preorders"

    def body(*add_ons: dict[str, Any]) -> dict[str, Any]:
        return {
            "tier_id": shop.tier_id,
            "shipping_country": "CN",
            "variants": {shop.lamp["id"]: {"colour": "black"}},
            "add_ons": list(add_ons),
        }

    cable = {"add_on_id": seen["cable"], "quantity": 1}
    # Refused, nothing taken: an add-on not sold late, one of no campaign, more cables than are left late.
    for wanted, status, kind_or_field in (
        ({"add_on_id": seen["shade"], "variant": {"colour": "white"}}, 409, "not-open"),
        ({"add_on_id": str(uuid.uuid4())}, 422, "add_ons.0.add_on_id"),
        (cable | {"quantity": 2}, 409, "sold-out"),
    ):
        refused = await client.post(preorders, json=body(wanted), headers=first.headers)
        assert refused.status_code == status, refused.text
        answer = refused.json()
        assert (answer["type"] if status == 409 else answer["errors"][0]["field"]) == kind_or_field, answer
    assert await left_of(sessions, seen["cable"]) == (1, 5)

    # The last late cable, wanted by two buyers at once: exactly one gets it.
    raced = await asyncio.gather(
        *(client.post(preorders, json=body(cable), headers=buyer.headers) for buyer in (first, second))
    )
    assert sorted(answer.status_code for answer in raced) == [201, 409], [answer.text for answer in raced]
    [lost] = [answer.json() for answer in raced if answer.status_code == 409]
    assert lost["type"] == "sold-out"
    winner, loser = (first, second) if raced[0].status_code == 201 else (second, first)
    made = next(answer.json() for answer in raced if answer.status_code == 201)
    # The cable's late price and its own shipping; the campaign's own limit on cables holds too.
    assert made["amount"] == LATE_PRICE + SHIPPING_CN + LATE_CABLE + CABLE_SHIPPING_CN
    assert [(i["kind"], i["unit_amount"]) for i in made["items"] if i["kind"] in ("tier", "addon")] == [
        ("tier", LATE_PRICE),
        ("addon", LATE_CABLE),
    ]
    assert await left_of(sessions, seen["cable"]) == (0, 4)
    assert (await client.get(late_url)).json()["add_ons"][0]["open"] is False

    # Paid in the one PaymentIntent, at the late price; given up, the cable goes back, to be bought again.
    intent = await pay_in_browser(stripe_server, made["payment"]["payment_intent_id"])
    assert intent["status"] == "succeeded" and intent["amount"] == made["amount"]
    paid = await client.post(f"{A}/pledges/{made['id']}/confirm", headers=winner.headers)
    assert paid.status_code == 200 and paid.json()["status"] == "collected", paid.text
    cancelled = await client.delete(f"{A}/pledges/{made['id']}", headers=winner.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert await left_of(sessions, seen["cable"]) == (1, 5)

    again = await client.post(preorders, json=body(cable), headers=loser.headers)
    assert again.status_code == 201, again.text
    assert await left_of(sessions, seen["cable"]) == (0, 4)
    # Left unpaid past the pledge hold, the sweep cancels it and the cable goes back.
    async with sessions.begin() as session:
        await session.execute(
            update(Pledge)
            .where(Pledge.id == uuid.UUID(again.json()["id"]))
            .values(
                created_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, stripe_settings.pledge_hold_seconds + 1)
            )
        )
    assert (await sweep(sessions, stripe_settings, jobs))["unpaid-preorders"] == 1
    assert (await pledge_row(sessions, again.json()["id"])).status == "cancelled"
    assert await left_of(sessions, seen["cable"]) == (1, 5)

    # The campaign page's Pre-order section shows the late cable at its late price, in both languages; the pre-order
    # form offers it and takes a quantity.
    slug = shop.campaign["slug"]
    section = (await client.get(f"/campaigns/{slug}")).text.split('id="preorder"')[1].split("</section>")[0]
    cable_row = section.split(f'id="preorder-add-on-{seen["cable"]}"')[1].split("</li>")[0]
    assert "Spare cable" in cable_row and "25.00" in cable_row and "1 left" in cable_row
    chinese = (await client.get(f"/campaigns/{slug}?lang=zh_CN")).text.split('id="preorder"')[1]
    assert "随预购可加购的附加商品" in chinese.split("</section>")[0]
    async with logged_in(client, third) as browser:
        form_page = f"/campaigns/{slug}/preorder?tier={shop.tier_id}"
        shown = await browser.get(form_page)
        offered_row = shown.text.split(f'id="preorder-add-on-{seen["cable"]}"')[1].split("</li>")[0]
        assert "25.00" in offered_row and f'name="addon.{seen["cable"]}"' in offered_row
        assert f'preorder-add-on-{seen["shade"]}"' not in shown.text  # not sold late
        chinese_form = await browser.get(form_page + "&lang=zh_CN")
        assert "随预购仍可购买" in chinese_form.text and "剩余 1 件" in chinese_form.text
        await browser.get(form_page + "&lang=en")
        fields = {"tier": shop.tier_id, f"variant.{shop.lamp['id']}.colour": "black", "shipping_country": "CN"}
        wrong = await post_form(
            browser, f"/campaigns/{slug}/preorder", fields | {f"addon.{seen['cable']}": "²"}, form_page=form_page
        )
        assert wrong.status_code == 422 and "from 0 to 20" in wrong.text
        assert await left_of(sessions, seen["cable"]) == (1, 5)
        made_here = await post_form(
            browser, f"/campaigns/{slug}/preorder", fields | {f"addon.{seen['cable']}": "1"}, form_page=form_page
        )
        assert made_here.status_code == 303, made_here.text
        pay = await browser.get(made_here.headers["location"])
        assert "489.00" in pay.text  # 449.00 + 10.00 shipping + the cable's 25.00 + 5.00
        after = await browser.get(form_page)
        assert 'id="preorder-add-ons"' not in after.text  # the last late cable is taken: none offered now
    assert await left_of(sessions, seen["cable"]) == (0, 4)

    # The maker ends the late cable (for good, asking again changes nothing): it is no longer sold.
    end = f"{late_url}/add-ons/{seen['cable']}/end"
    assert (await client.post(end, headers=first.headers)).status_code == 403
    assert (await client.post(f"{late_url}/add-ons/{uuid.uuid4()}/end", headers=shop.maker.headers)).status_code == 404
    ended = await client.post(end, headers=shop.maker.headers)
    assert ended.status_code == 200 and ended.json()["add_ons"][0]["open"] is False, ended.text
    assert ended.json()["tiers"][0]["open"] is True
    assert (await client.post(end, headers=shop.maker.headers)).json() == ended.json()
    closed = await client.post(preorders, json=body(cable), headers=loser.headers)
    assert closed.status_code == 409 and closed.json()["type"] == "not-open"

    doc = (await client.get(f"{A}/openapi.json")).json()
    assert {"403", "404"} <= set(
        doc["paths"]["/api/v1/campaigns/{campaign_id}/late-pledges/add-ons/{add_on_id}/end"]["post"]["responses"]
    )
