"""An address changed after funding prices the shipping again for the new country: dearer is charged at once with
the saved card (a refused card keeps the old address), cheaper is refunded from escrow (409 `escrow-short` when
escrow holds less), equal moves nothing; the pledge's lines, its amount and the ledger agree afterwards."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from payments.add_on_charges import SETTLE_ADD_ON_CHARGE, settle_add_on_charge_job
from payments.gateway import StripeGateway
from payments.ledger import campaign_ledger
from payments.models import AddOnCharge, Refund, StripeCustomer
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.factories import address
from tests.helpers import CARD_DECLINED_AT_CHARGE, Actor, confirm_card_setup, many_backers
from tests.money_helpers import amount_refunded_at_stripe, payment_intents, run_jobs, stripe_work, sweep
from tests.pages import logged_in, post_form
from tests.pledge_manager_helpers import CABLE_PRICE, LAMP_PRICE, A, Shop, back_lamp, fund, launched_shop
from tests.test_pledge_manager import line_sum, lock_addresses
from tests.test_pledge_manager_escrow import release_all_but

LAMP_SHIPPING = [
    {"country": "CN", "fee": 1_000},
    {"country": "JP", "fee": 1_000},
    {"country": "US", "fee": 2_500},
    {"country": "HK", "fee": 500},
]
CABLE_SHIPPING = [
    {"country": "CN", "fee": 500},
    {"country": "JP", "fee": 500},
    {"country": "US", "fee": 800},
    {"country": "HK", "fee": 500},
]


async def shop_shipping_abroad(client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]) -> Shop:
    """The pledge manager's lamp shop, its lamp and cable shipped to CN and JP at the same fees, the US and HK at
    fees of their own."""

    async def abroad(url: str, maker: Actor) -> None:
        draft = (await client.get(url, headers=maker.headers)).json()
        tier = draft["tiers"][0]["id"]
        answer = await client.patch(f"{url}/tiers/{tier}", json={"shipping": LAMP_SHIPPING}, headers=maker.headers)
        assert answer.status_code == 200, answer.text
        [cable] = [add_on for add_on in draft["add_ons"] if add_on["price"] == CABLE_PRICE]
        answer = await client.patch(
            f"{url}/add-ons/{cable['id']}", json={"shipping": CABLE_SHIPPING}, headers=maker.headers
        )
        assert answer.status_code == 200, answer.text

    return await launched_shop(client, sessions, before_submit=abroad)


def shipping_line(pledge: dict[str, Any]) -> int:
    return sum(item["unit_amount"] for item in pledge["items"] if item["kind"] == "shipping")


async def test_a_new_country_after_funding_charges_the_dearer_shipping_refunds_the_cheaper_and_equal_moves_nothing(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    shop = await shop_shipping_abroad(stripe_client, sessions)
    [backer] = await many_backers(sessions, 1)
    pledge = await back_lamp(stripe_client, stripe_server, shop, backer)
    url = f"{A}/pledges/{pledge['id']}"
    cable = await stripe_client.post(f"{url}/items", json={"add_on_id": shop.cable["id"]}, headers=backer.headers)
    assert cable.status_code == 201, cable.text
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)
    paid = LAMP_PRICE + CABLE_PRICE + 1_000 + 500
    campaign_id = uuid.UUID(shop.campaign["id"])

    # Before giving it, the backer may ask what an address in a country would move.
    quote = await stripe_client.get(f"{url}/shipping-quote", params={"country": "US"}, headers=backer.headers)
    assert quote.status_code == 200, quote.text
    assert quote.json() == {
        "country": "US",
        "currency": "CNY",
        "shipping_fee": 3_300,
        "current_shipping_fee": 1_500,
        "difference": 1_800,
    }
    nowhere = await stripe_client.get(f"{url}/shipping-quote", params={"country": "FR"}, headers=backer.headers)
    assert nowhere.status_code == 422 and nowhere.json()["errors"][0]["field"] == "country", nowhere.text
    paths = (await stripe_client.get(f"{A}/openapi.json")).json()["paths"]
    assert {"200", "403", "409", "422"} <= set(paths["/api/v1/pledges/{pledge_id}/shipping-quote"]["get"]["responses"])
    assert {"409", "422", "503"} <= set(paths["/api/v1/pledges/{pledge_id}/address"]["put"]["responses"])

    # Equal: Japan costs what China did; the address and the pledge's country change, nothing moves.
    same = await stripe_client.put(f"{url}/address", json=address("JP", city="Tokyo"), headers=backer.headers)
    assert same.status_code == 200, same.text
    assert (same.json()["shipping_country"], same.json()["amount"], shipping_line(same.json())) == ("JP", paid, 1_500)

    # Dearer: the lamp's and the cable's fees to the US, less what was paid, charged at once with the saved card.
    dearer = await stripe_client.put(f"{url}/address", json=address("US", city="Boston"), headers=backer.headers)
    assert dearer.status_code == 200, dearer.text
    body = dearer.json()
    assert (body["address"]["country"], body["shipping_country"]) == ("US", "US")
    assert (body["amount"], shipping_line(body)) == (paid + 1_800, 2_500 + 800)
    assert body["amount"] == line_sum(body)
    async with sessions() as session:
        [charge] = list(await session.scalars(select(AddOnCharge)))
    assert (charge.status, charge.amount, charge.add_on_id) == ("succeeded", 1_800, None)
    [intent] = await payment_intents(stripe_server, pledge_item_id=str(charge.item_id))
    assert (intent["amount"], intent["status"]) == (1_800, "succeeded")
    async with sessions() as session:
        ledger = await campaign_ledger(session, campaign_id)
    assert ledger.collected == paid + 1_800

    # Cheaper, on the page: it says what comes back and asks once more; then refunded from the pledge's charge.
    hong_kong = address("HK", city="香港", region="")
    page = f"/me/pledges/{pledge['id']}"
    async with logged_in(stripe_client, backer) as browser:
        asked = await post_form(browser, f"{page}/address", hong_kong, form_page=page)
        assert asked.status_code == 200, asked.text
        assert "HK$" in asked.text or "23.00" in asked.text
        assert "will be refunded to your card" in asked.text and 'name="confirm" value="yes"' in asked.text
        unchanged = (await stripe_client.get(url, headers=backer.headers)).json()
        assert unchanged["address"]["country"] == "US"
        chinese = await post_form(browser, f"{page}/address?lang=zh_CN", hong_kong, form_page=page)
        assert "将退回到你的卡" in chinese.text, chinese.text
        done = await post_form(browser, f"{page}/address", {**hong_kong, "confirm": "yes"}, form_page=page)
        assert done.status_code == 303, done.text
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    shown = (await stripe_client.get(url, headers=backer.headers)).json()
    assert (shown["address"]["country"], shown["shipping_country"], shipping_line(shown)) == ("HK", "HK", 1_000)
    assert shown["amount"] == line_sum(shown) == paid + 1_800 - 2_300
    assert shown["status"] == "partially_refunded"
    assert await amount_refunded_at_stripe(stripe_server, pledge["id"]) == 2_300
    async with sessions() as session:
        ledger = await campaign_ledger(session, campaign_id)
        stored = await session.get_one(Pledge, uuid.UUID(pledge["id"]))
    # The ledger agrees with the pledge: what was collected less what was refunded is what it now pays.
    assert (ledger.collected, ledger.refunded) == (paid + 1_800, 2_300)
    assert ledger.collected - ledger.refunded == stored.amount == shown["amount"]
    assert stored.shipping_fee == 1_000

    # The request for the US again died before Stripe was called: the charge is recorded, in doubt. Meanwhile the
    # contents and the address wait; the sweep's job finds no charge at Stripe, sends it once, and saves the address.
    async with sessions.begin() as session:
        in_doubt = uuid.uuid4()
        session.add(
            AddOnCharge(
                pledge_id=stored.id,
                item_id=in_doubt,
                address=address("US"),
                quantity=1,
                unit_amount=0,
                shipping_fee=2_300,
                idempotency_key=f"pledge-item:{in_doubt}:charge",
                amount=2_300,
                currency="CNY",
                customer_id=charge.customer_id,
                payment_method_id=charge.payment_method_id,
                created_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 120),
            )
        )
    waiting = [
        await stripe_client.post(f"{url}/items", json={"add_on_id": shop.cable["id"]}, headers=backer.headers),
        await stripe_client.put(f"{url}/address", json=address("US"), headers=backer.headers),
    ]
    assert [(r.status_code, r.json()["type"]) for r in waiting] == [(409, "charge-under-way")] * 2
    jobs.jobs.clear()
    assert (await sweep(sessions, stripe_settings, jobs))["add-on-charges"] == 1
    [job] = [job for job in jobs.jobs if job.actor_name == SETTLE_ADD_ON_CHARGE]
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        assert await settle_add_on_charge_job(work, *job.args) == "succeeded"
        assert await settle_add_on_charge_job(work, *job.args) == "succeeded"
    assert len(await payment_intents(stripe_server, pledge_item_id=str(in_doubt))) == 1
    shown = (await stripe_client.get(url, headers=backer.headers)).json()
    assert (shown["address"]["country"], shipping_line(shown)) == ("US", 3_300)
    assert shown["amount"] == line_sum(shown) == paid + 1_800 - 2_300 + 2_300
    async with sessions() as session:
        ledger = await campaign_ledger(session, campaign_id)
    assert ledger.collected - ledger.refunded == shown["amount"]


async def test_a_refused_card_escrow_short_an_ordered_batch_and_the_lock_each_keep_the_old_address(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    shop = await shop_shipping_abroad(stripe_client, sessions)
    [backer] = await many_backers(sessions, 1)
    pledge = await back_lamp(stripe_client, stripe_server, shop, backer)
    url = f"{A}/pledges/{pledge['id']}"
    await fund(stripe_client, sessions, engine, gateway, stripe_settings, jobs, shop)
    given = await stripe_client.put(f"{url}/address", json=address("CN"), headers=backer.headers)
    assert given.status_code == 200, given.text
    before = given.json()

    # The saved card now declines: the US's dearer shipping is not charged and the address stays in CN.
    async with sessions() as session:
        customer = await session.scalar(
            select(StripeCustomer.customer_id).where(StripeCustomer.user_id == uuid.UUID(backer.id))
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
    refused = await stripe_client.put(f"{url}/address", json=address("US"), headers=backer.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "card-declined", refused.text
    assert "address stays the old one" in refused.json()["detail"]
    assert (await stripe_client.get(url, headers=backer.headers)).json() == before
    # On the page: asked first with the card and the sum, then told in the backer's words; the address stays.
    page = f"/me/pledges/{pledge['id']}"
    async with logged_in(stripe_client, backer) as browser:
        asked = await post_form(browser, f"{page}/address", address("US"), form_page=page)
        assert "Your card ending 0341 will be charged" in asked.text and "15.00" in asked.text, asked.text
        declined = await post_form(browser, f"{page}/address", {**address("US"), "confirm": "yes"}, form_page=page)
        assert declined.status_code == 409 and "your address stays the old one" in declined.text
    assert (await stripe_client.get(url, headers=backer.headers)).json() == before
    async with sessions() as session:
        failed = list(await session.scalars(select(AddOnCharge)))
    assert [(charge.status, charge.failure_code) for charge in failed] == [("failed", "card_declined")] * 2

    # Escrow was released to the maker but for 1.00: HK's cheaper shipping (5.00 back) cannot be refunded.
    await release_all_but(sessions, shop.campaign["id"], 100)
    short = await stripe_client.put(f"{url}/address", json=address("HK"), headers=backer.headers)
    assert short.status_code == 409 and short.json()["type"] == "escrow-short", short.text
    assert "needs 500" in short.json()["detail"]
    assert (await stripe_client.get(url, headers=backer.headers)).json() == before
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Refund)) == 0

    # The batch that makes the pledge is ordered: its shipping is no longer priced again, but a street still moves.
    base = f"{A}/campaigns/{shop.campaign['id']}"
    [batch] = (await stripe_client.get(f"{base}/batches", headers=shop.maker.headers)).json()
    confirmed = await stripe_client.post(f"{base}/batches/{batch['id']}/confirm", headers=shop.maker.headers)
    assert confirmed.status_code == 200, confirmed.text
    ordered = await stripe_client.put(f"{url}/address", json=address("US"), headers=backer.headers)
    assert ordered.status_code == 409 and ordered.json()["type"] == "batch-confirmed", ordered.text
    moved = await stripe_client.put(f"{url}/address", json=address("CN", city="广州"), headers=backer.headers)
    assert moved.status_code == 200 and moved.json()["amount"] == before["amount"], moved.text

    # After the address lock nothing changes at all.
    await lock_addresses(sessions, shop.campaign["id"])
    locked = await stripe_client.put(f"{url}/address", json=address("HK"), headers=backer.headers)
    assert locked.status_code == 409 and locked.json()["type"] == "address-locked", locked.text
    assert len(await payment_intents(stripe_server, pledge_id=pledge["id"])) == 1
