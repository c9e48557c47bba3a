"""The pledge manager through the JSON API: add-ons added while live and bought after the close (charged at once,
exactly once), given back, variants changed until the address lock, with stock kept exact."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import AddOn, Campaign, Pledge, ProductVariant, Space
from campaigns.pledges.contents import contents_of
from campaigns.pledges.models import PledgeItem
from payments.add_on_charges import (
    SETTLE_ADD_ON_CHARGE,
    settle_add_on_charge_job,
)
from payments.gateway import StripeGateway
from payments.ledger import campaign_ledger
from payments.models import AddOnCharge, StripeCustomer
from payments.money import fund_contribution
from service.app import create_app
from service.broker import ListSender
from service.devservices import EmbeddedStripe, free_port
from service.settings import Settings
from tests.helpers import (
    CARD_DECLINED_AT_CHARGE,
    confirm_card_setup,
    many_backers,
)
from tests.money_helpers import amount_refunded_at_stripe, payment_intents, run_jobs, stripe_work, sweep
from tests.pages import logged_in
from tests.pledge_manager_helpers import CABLE_PRICE, CABLE_SHIPPING_CN, LAMP_PRICE, A, back_lamp, fund, launched_shop


def line_sum(pledge: dict[str, Any]) -> int:
    return sum(item["quantity"] * item["unit_amount"] for item in pledge["items"])


def kinds(pledge: dict[str, Any]) -> list[tuple[str, str | None, int]]:
    return [(item["kind"], item["sku"], item["unit_amount"]) for item in pledge["items"]]


async def remaining(sessions: async_sessionmaker[AsyncSession], model: Any, row_id: str) -> int | None:
    async with sessions() as session:
        value: int | None = await session.scalar(select(model.remaining).where(model.id == uuid.UUID(row_id)))
        return value


async def lock_addresses(sessions: async_sessionmaker[AsyncSession], campaign_id: str) -> None:
    """The maker's address lock is a moment ago."""
    async with sessions.begin() as session:
        await session.execute(
            update(Campaign)
            .where(Campaign.id == uuid.UUID(campaign_id))
            .values(address_lock_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1))
        )


async def test_while_live_an_add_on_joins_the_pledge_with_its_shipping_and_leaves_it_with_its_units(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await launched_shop(stripe_client, sessions, cables=5)
    [backer, stranger] = await many_backers(sessions, 2)
    pledge = await back_lamp(stripe_client, stripe_server, shop, backer)
    items = f"{A}/pledges/{pledge['id']}/items"

    added = await stripe_client.post(items, json={"add_on_id": shop.cable["id"], "quantity": 2}, headers=backer.headers)
    assert added.status_code == 201, added.text
    body = added.json()
    assert kinds(body) == [
        ("tier", None, LAMP_PRICE),
        ("shipping", None, 1_000 + 2 * CABLE_SHIPPING_CN),
        ("addon", "CABLE", CABLE_PRICE),
    ]
    assert body["amount"] == line_sum(body) == LAMP_PRICE + 1_000 + 2 * (CABLE_PRICE + CABLE_SHIPPING_CN)
    assert body["shipping_fee"] == 1_000 + 2 * CABLE_SHIPPING_CN
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 3
    async with sessions() as session:
        assert await contents_of(session, uuid.UUID(pledge["id"])) == {"LAMP-BLC": 1, "CABLE": 2}

    # A shade needs its colour; one the product does not have is a 422 naming it.
    for variant, field in (({}, "variant"), ({"colour": "red"}, "variant")):
        refused = await stripe_client.post(
            items, json={"add_on_id": shop.shade["id"], "variant": variant}, headers=backer.headers
        )
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, refused.text
    white = await stripe_client.post(
        items, json={"add_on_id": shop.shade["id"], "variant": {"colour": "white"}}, headers=backer.headers
    )
    assert white.status_code == 201, white.text
    assert white.json()["items"][-1] | {"id": None} == {
        "id": None,
        "kind": "addon",
        "ref_id": shop.shade["product_id"],
        "variant": {"colour": "white"},
        "quantity": 1,
        "unit_amount": 1_900,
        "sku": "SHADE-WHT",
        "add_on_id": shop.shade["id"],
    }

    # The maker sees the units per SKU move with the backers' choices.
    async with logged_in(stripe_client, shop.maker) as browser:
        funding = await browser.get(f"/maker/campaigns/{shop.campaign['slug']}/funding")
    units = re.findall(r'<span class="muted">([A-Z-]+)</span></th><td class="num">(\d+)</td>', funding.text)
    assert units == [("CABLE", "2"), ("LAMP-BLC", "1"), ("SHADE-WHT", "1")], funding.text

    # Another campaign's add-on, someone else's pledge, a tier line: refused, nothing changes.
    other = await launched_shop(stripe_client, sessions)
    foreign = await stripe_client.post(items, json={"add_on_id": other.cable["id"]}, headers=backer.headers)
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["field"] == "add_on_id"
    theirs = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=stranger.headers)
    assert theirs.status_code == 404
    tier_line = white.json()["items"][0]["id"]
    kept = await stripe_client.delete(f"{items}/{tier_line}", headers=backer.headers)
    assert kept.status_code == 422 and kept.json()["errors"][0]["field"] == "item", kept.text

    cable_line = next(item["id"] for item in white.json()["items"] if item["sku"] == "CABLE")
    removed = await stripe_client.delete(f"{items}/{cable_line}", headers=backer.headers)
    assert removed.status_code == 200, removed.text
    assert kinds(removed.json()) == [
        ("tier", None, LAMP_PRICE),
        ("shipping", None, 1_000),
        ("addon", "SHADE-WHT", 1_900),
    ]
    assert removed.json()["amount"] == line_sum(removed.json()) == LAMP_PRICE + 1_000 + 1_900
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 5

    # A cancelled pledge gives back what its add-ons held, and takes no more.
    for _ in range(2):  # the same add-on again grows its one line, as at pledge time
        again = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=backer.headers)
        assert again.status_code == 201, again.text
    assert [(item["sku"], item["quantity"]) for item in again.json()["items"] if item["kind"] == "addon"] == [
        ("SHADE-WHT", 1),
        ("CABLE", 2),
    ]
    assert (
        again.json()["amount"]
        == line_sum(again.json())
        == LAMP_PRICE + 1_000 + 1_900 + 2 * (CABLE_PRICE + CABLE_SHIPPING_CN)
    )
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 3
    assert (await stripe_client.delete(f"{A}/pledges/{pledge['id']}", headers=backer.headers)).status_code == 200
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 5
    closed = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=backer.headers)
    assert closed.status_code == 409 and closed.json()["type"] == "pledge-closed", closed.text


async def test_after_funding_an_add_on_is_paid_at_once_booked_once_and_refunded_when_given_back_before_the_lock(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    shop = await launched_shop(stripe_client, sessions, cables=5)
    [backer] = await many_backers(sessions, 1)
    pledge = await back_lamp(stripe_client, stripe_server, shop, backer)
    items = f"{A}/pledges/{pledge['id']}/items"
    # A shade joins while live, and is charged with the pledge at the close.
    shade = await stripe_client.post(
        items, json={"add_on_id": shop.shade["id"], "variant": {"colour": "black"}}, headers=backer.headers
    )
    assert shade.status_code == 201, shade.text
    async with sessions.begin() as session:  # half the space's fee goes to its risk fund, fixed at the close
        campaign_row = await session.get_one(Campaign, uuid.UUID(shop.campaign["id"]))
        await session.execute(update(Space).where(Space.id == campaign_row.space_id).values(fund_share_bps=5_000))
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)
    [charged_with_pledge] = await payment_intents(stripe_server, pledge_id=pledge["id"])
    assert charged_with_pledge["amount"] == LAMP_PRICE + 1_000 + 1_900
    async with sessions() as session:
        before = await campaign_ledger(session, uuid.UUID(shop.campaign["id"]))

    bought = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=backer.headers)

    assert bought.status_code == 201, bought.text
    body = bought.json()
    cable_line = body["items"][-1]
    assert (cable_line["kind"], cable_line["sku"], cable_line["unit_amount"]) == ("addon", "CABLE", CABLE_PRICE)
    assert body["status"] == "collected"
    assert body["amount"] == line_sum(body) == LAMP_PRICE + 1_000 + 1_900 + CABLE_PRICE + CABLE_SHIPPING_CN
    [intent] = await payment_intents(stripe_server, pledge_item_id=cable_line["id"])
    assert (intent["amount"], intent["status"]) == (CABLE_PRICE + CABLE_SHIPPING_CN, "succeeded")
    async with sessions() as session:
        after = await campaign_ledger(session, uuid.UUID(shop.campaign["id"]))
        assert await contents_of(session, uuid.UUID(pledge["id"])) == {"LAMP-BLC": 1, "SHADE-BLC": 1, "CABLE": 1}
    assert after.collected - before.collected == CABLE_PRICE + CABLE_SHIPPING_CN
    assert after.platform_fee > before.platform_fee  # the close's fees, on the add-on too
    # and the space's fund gets its share of the add-on's sponsor fee, as of every collection
    added_fee = after.sponsor_fee - before.sponsor_fee
    assert added_fee > 0 and after.fund_contributed - before.fund_contributed == fund_contribution(added_fee, 5_000)
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 4

    # The same request again (a retried POST with its Idempotency-Key) answers the same and charges nothing more.
    key = {"Idempotency-Key": f"cable-{uuid.uuid4()}"} | backer.headers
    first = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=key)
    again = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=key)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 3

    # Given back before the lock: refunded in full, its unit free again.
    gone = await stripe_client.delete(f"{items}/{cable_line['id']}", headers=backer.headers)
    assert gone.status_code == 200, gone.text
    assert cable_line["id"] not in {item["id"] for item in gone.json()["items"]}
    assert gone.json()["amount"] == line_sum(gone.json())
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 4
    async with httpx.AsyncClient(base_url=stripe_server.api_base, auth=(stripe_server.secret_key, "")) as http:
        charge = (await http.get(f"/v1/payment_intents/{intent['id']}")).json()["latest_charge"]
        charge = charge if isinstance(charge, dict) else (await http.get(f"/v1/charges/{charge}")).json()
    assert charge["amount_refunded"] == CABLE_PRICE + CABLE_SHIPPING_CN
    async with sessions() as session:
        refunded = await campaign_ledger(session, uuid.UUID(shop.campaign["id"]))
    assert refunded.refunded == CABLE_PRICE + CABLE_SHIPPING_CN

    # The shade paid with the pledge is given back from the pledge's own charge.
    shade_line = shade.json()["items"][-1]["id"]
    assert (await stripe_client.delete(f"{items}/{shade_line}", headers=backer.headers)).status_code == 200
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    assert await amount_refunded_at_stripe(stripe_server, pledge["id"]) == 1_900
    shown = (await stripe_client.get(f"{A}/pledges/{pledge['id']}", headers=backer.headers)).json()
    assert shown["status"] == "partially_refunded" and shown["amount"] == line_sum(shown)
    assert [item["sku"] for item in shown["items"] if item["kind"] == "addon"] == ["CABLE"]

    # After the address lock nothing of the contents changes.
    await lock_addresses(sessions, shop.campaign["id"])
    late = await stripe_client.post(items, json={"add_on_id": shop.cable["id"]}, headers=backer.headers)
    assert late.status_code == 409 and late.json()["type"] == "address-locked", late.text
    lines = (await stripe_client.get(f"{A}/pledges/{pledge['id']}", headers=backer.headers)).json()["items"]
    paid = next(item for item in lines if item["kind"] == "addon")
    assert (await stripe_client.delete(f"{items}/{paid['id']}", headers=backer.headers)).json()["type"] == (
        "address-locked"
    )
    tier_line = lines[0]["id"]
    recolour = await stripe_client.put(
        f"{A}/pledges/{pledge['id']}/variants",
        json={"choices": [{"item": tier_line, "variant": {shop.lamp["id"]: {"colour": "white"}}}]},
        headers=backer.headers,
    )
    assert recolour.status_code == 409 and recolour.json()["type"] == "address-locked"
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 4


async def test_a_declined_card_adds_nothing_and_gives_the_unit_back_and_a_charge_in_doubt_is_found_not_resent(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    shop = await launched_shop(stripe_client, sessions, cables=2)
    [declined, crashed] = await many_backers(sessions, 2)
    pledges = {
        backer.email: await back_lamp(stripe_client, stripe_server, shop, backer) for backer in (declined, crashed)
    }
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)

    # The first backer's saved card now declines (say, it was cancelled by the bank after the close).
    pledge = pledges[declined.email]
    async with sessions() as session:
        customer = await session.scalar(
            select(StripeCustomer.customer_id).where(StripeCustomer.user_id == uuid.UUID(declined.id))
        )
    assert customer is not None
    setup = await gateway.create_setup_intent(customer_id=customer, pledge_id=pledge["id"], attempt=9)
    assert setup.client_secret is not None
    assert (await confirm_card_setup(stripe_server, setup.client_secret, CARD_DECLINED_AT_CHARGE)).status_code == 200
    card = (await gateway.retrieve_setup_intent(setup.id)).payment_method
    assert card is not None
    await gateway.attach_payment_method(payment_method_id=card, customer_id=customer)
    async with sessions.begin() as session:
        await session.execute(update(Pledge).where(Pledge.id == uuid.UUID(pledge["id"])).values(payment_method_id=card))

    refused = await stripe_client.post(
        f"{A}/pledges/{pledge['id']}/items", json={"add_on_id": shop.cable["id"]}, headers=declined.headers
    )

    assert refused.status_code == 409 and refused.json()["type"] == "card-declined", refused.text
    assert "nothing was charged" in refused.json()["detail"]
    shown = (await stripe_client.get(f"{A}/pledges/{pledge['id']}", headers=declined.headers)).json()
    assert [item["kind"] for item in shown["items"]] == ["tier", "shipping"] and shown["amount"] == pledge["amount"]
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 2
    async with sessions() as session:
        [failed] = list(await session.scalars(select(AddOnCharge)))
    assert (failed.status, failed.failure_code) == ("failed", "card_declined")

    # The second backer's request died after Stripe charged and before the outcome was recorded: the sweep's job
    # finds the charge at Stripe and records it, and never charges again.
    other = pledges[crashed.email]
    charge, customer, card = await cable_charge_recorded(sessions, shop, crashed.id, other["id"])
    await gateway.charge_line_off_session(
        item_id=charge.item_id, amount=charge.amount, currency="CNY", customer_id=customer, payment_method_id=card
    )
    async with sessions.begin() as session:
        await session.execute(
            update(AddOnCharge)
            .where(AddOnCharge.id == charge.id)
            .values(created_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 120))
        )
    assert (await sweep(sessions, stripe_settings, jobs))["add-on-charges"] == 1
    assert (await sweep(sessions, stripe_settings, jobs))["add-on-charges"] == 0, "asked once, not every sweep"
    [job] = [job for job in jobs.jobs if job.actor_name == SETTLE_ADD_ON_CHARGE]
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        assert await settle_add_on_charge_job(work, *job.args) == "succeeded"
        assert await settle_add_on_charge_job(work, *job.args) == "succeeded"
    assert len(await payment_intents(stripe_server, pledge_item_id=str(charge.item_id))) == 1
    shown = (await stripe_client.get(f"{A}/pledges/{other['id']}", headers=crashed.headers)).json()
    assert [item["id"] for item in shown["items"] if item["kind"] == "addon"] == [str(charge.item_id)]
    assert shown["amount"] == line_sum(shown) == other["amount"] + CABLE_PRICE + CABLE_SHIPPING_CN
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 1

    # Stripe cannot be reached when the same backer buys the last cable: the answer says so, the unit stays held,
    # and the sweep's job, finding no charge at Stripe, sends the same call again and adds the line.
    unreachable = replace(stripe_settings, stripe_api_base=f"http://127.0.0.1:{free_port()}")
    app = create_app(unreachable, sender=jobs, engine_pool=2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as down:
            doubt = await down.post(
                f"{A}/pledges/{other['id']}/items", json={"add_on_id": shop.cable["id"]}, headers=crashed.headers
            )
    assert doubt.status_code == 503 and doubt.json()["type"] == "charge-in-doubt", doubt.text
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 0
    async with sessions.begin() as session:
        [late] = list(await session.scalars(select(AddOnCharge).where(AddOnCharge.status == "unknown")))
        late.created_at = await session.scalar(select(func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 120)))
    jobs.jobs.clear()
    assert (await sweep(sessions, stripe_settings, jobs))["add-on-charges"] == 1
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        [job] = [job for job in jobs.jobs if job.actor_name == SETTLE_ADD_ON_CHARGE]
        assert await settle_add_on_charge_job(work, *job.args) == "succeeded"
    assert len(await payment_intents(stripe_server, pledge_item_id=str(late.item_id))) == 1
    shown = (await stripe_client.get(f"{A}/pledges/{other['id']}", headers=crashed.headers)).json()
    assert [item["sku"] for item in shown["items"] if item["kind"] == "addon"] == ["CABLE", "CABLE"]
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 0


async def test_an_add_on_charged_after_its_pledge_was_refunded_meanwhile_is_given_back_whole_and_not_added(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    shop = await launched_shop(stripe_client, sessions, cables=3)
    [backer] = await many_backers(sessions, 1)
    pledge = await back_lamp(stripe_client, stripe_server, shop, backer)
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)
    charge, customer, card = await cable_charge_recorded(sessions, shop, backer.id, pledge["id"])
    # Charged at Stripe, and before the outcome is recorded the pledge is refunded in full.
    await gateway.charge_line_off_session(
        item_id=charge.item_id, amount=charge.amount, currency="CNY", customer_id=customer, payment_method_id=card
    )
    async with sessions.begin() as session:
        await session.execute(update(Pledge).where(Pledge.id == uuid.UUID(pledge["id"])).values(status="refunded"))
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        assert await settle_add_on_charge_job(work, str(charge.id)) == "succeeded"
        await run_jobs(work, jobs)

    shown = (await stripe_client.get(f"{A}/pledges/{pledge['id']}", headers=backer.headers)).json()
    assert [item["kind"] for item in shown["items"]] == ["tier", "shipping"]
    [intent] = await payment_intents(stripe_server, pledge_item_id=str(charge.item_id))
    async with httpx.AsyncClient(base_url=stripe_server.api_base, auth=(stripe_server.secret_key, "")) as http:
        charged = (await http.get(f"/v1/payment_intents/{intent['id']}")).json()["latest_charge"]
        charged = charged if isinstance(charged, dict) else (await http.get(f"/v1/charges/{charged}")).json()
    assert charged["amount_refunded"] == CABLE_PRICE + CABLE_SHIPPING_CN
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 3


async def test_two_backers_buying_the_last_cable_at_once_one_gets_it_and_the_other_is_told_it_is_sold_out(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    shop = await launched_shop(stripe_client, sessions, cables=1)
    backers = await many_backers(sessions, 2)
    pledges = [await back_lamp(stripe_client, stripe_server, shop, backer) for backer in backers]
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)

    answers = await asyncio.gather(
        *(
            stripe_client.post(
                f"{A}/pledges/{pledge['id']}/items", json={"add_on_id": shop.cable["id"]}, headers=backer.headers
            )
            for pledge, backer in zip(pledges, backers, strict=True)
        )
    )

    assert sorted(answer.status_code for answer in answers) == [201, 409]
    [lost] = [answer for answer in answers if answer.status_code == 409]
    assert lost.json()["type"] == "sold-out"
    assert await remaining(sessions, AddOn, shop.cable["id"]) == 0
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AddOnCharge)) == 1
        assert await session.scalar(select(func.count()).where(PledgeItem.kind == "addon")) == 1


async def test_a_backer_changes_colour_until_the_lock_and_a_sold_out_colour_leaves_the_old_one(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await launched_shop(stripe_client, sessions, white_limit=1)
    [backer, rival] = await many_backers(sessions, 2)
    pledge = await back_lamp(stripe_client, stripe_server, shop, backer)
    rivals = await back_lamp(stripe_client, stripe_server, shop, rival)
    url = f"{A}/pledges/{pledge['id']}/variants"
    tier_line = pledge["items"][0]["id"]

    def colour(name: str, line: str = tier_line) -> dict[str, Any]:
        return {"choices": [{"item": line, "variant": {shop.lamp["id"]: {"colour": name}}}]}

    white = await stripe_client.put(url, json=colour("white"), headers=backer.headers)
    assert white.status_code == 200, white.text
    assert white.json()["items"][0]["variant"] == {shop.lamp["id"]: {"colour": "white"}}
    assert await remaining(sessions, ProductVariant, shop.variants["white"]["id"]) == 0

    # The one white lamp is taken: the rival keeps black, and nothing moves.
    taken = await stripe_client.put(
        f"{A}/pledges/{rivals['id']}/variants", json=colour("white", rivals["items"][0]["id"]), headers=rival.headers
    )
    assert taken.status_code == 409 and taken.json()["type"] == "sold-out", taken.text
    back = await stripe_client.put(url, json=colour("black"), headers=backer.headers)
    assert back.status_code == 200 and back.json()["items"][0]["variant"] == {shop.lamp["id"]: {"colour": "black"}}
    assert await remaining(sessions, ProductVariant, shop.variants["white"]["id"]) == 1

    for body, field in (
        (colour("red"), "choices.0.variant"),
        ({"choices": [{"item": str(uuid.uuid4()), "variant": {}}]}, "choices.0.item"),
        ({"choices": [{"item": tier_line, "variant": {str(uuid.uuid4()): {"colour": "white"}}}]}, "choices.0.variant"),
    ):
        refused = await stripe_client.put(url, json=body, headers=backer.headers)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, refused.text
    assert await remaining(sessions, ProductVariant, shop.variants["white"]["id"]) == 1


async def cable_charge_recorded(
    sessions: async_sessionmaker[AsyncSession], shop: Any, backer_id: str, pledge_id: str
) -> tuple[AddOnCharge, str, str]:
    """A cable's charge after the close as the request records it before calling Stripe (its unit taken), for the
    tests of a request that died before the outcome: the charge, the backer's Stripe customer and the saved card."""
    async with sessions.begin() as session:
        customer = await session.scalar(
            select(StripeCustomer.customer_id).where(StripeCustomer.user_id == uuid.UUID(backer_id))
        )
        card = await session.scalar(select(Pledge.payment_method_id).where(Pledge.id == uuid.UUID(pledge_id)))
        assert customer is not None and card is not None
        item_id = uuid.uuid4()
        charge = AddOnCharge(
            pledge_id=uuid.UUID(pledge_id),
            item_id=item_id,
            add_on_id=uuid.UUID(shop.cable["id"]),
            sku="CABLE",
            quantity=1,
            unit_amount=CABLE_PRICE,
            shipping_fee=CABLE_SHIPPING_CN,
            idempotency_key=f"pledge-item:{item_id}:charge",
            amount=CABLE_PRICE + CABLE_SHIPPING_CN,
            currency="CNY",
            customer_id=customer,
            payment_method_id=card,
        )
        session.add(charge)
        await session.execute(update(AddOn).where(AddOn.id == charge.add_on_id).values(remaining=AddOn.remaining - 1))
    return charge, customer, card
