"""Pre-orders through the JSON API: a funded campaign keeps selling its late rewards, each paid at once on-session
(the browser confirms the PaymentIntent the server made), recorded exactly once whether the confirm call or Stripe's
webhook comes first, and cancelled with a full refund until its batch is confirmed for production."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.late_pledges import LateReward
from campaigns.models import Campaign, Pledge
from fulfillment.models import Allocation, Batch
from fulfillment.service import plan_campaign
from payments.gateway import StripeGateway
from payments.ledger import campaign_ledger
from payments.models import ChargeAttempt, LedgerTransaction
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import (
    CARD_NEEDS_AUTHENTICATION,
    CARD_OK,
    Actor,
    many_backers,
    stripe_event,
    stripe_http,
    stripe_signature,
)
from tests.money_helpers import pledge_row, run_jobs, stripe_work, sweep
from tests.pages import csrf_from, logged_in, post_form
from tests.pledge_manager_helpers import LAMP_PRICE, A, Shop, back_lamp, fund, launched_shop

LATE_PRICE = 44_900
SHIPPING_CN = 1_000


@dataclass
class FundedShop:
    shop: Shop
    buyers: list[Actor]

    @property
    def preorders(self) -> str:
        return f"{A}/campaigns/{self.shop.campaign['id']}/preorders"

    def body(self, colour: str = "black") -> dict[str, Any]:
        return {
            "tier_id": self.shop.tier_id,
            "shipping_country": "CN",
            "variants": {self.shop.lamp["id"]: {"colour": colour}},
        }


async def funded_shop(
    client: httpx.AsyncClient,
    stripe: EmbeddedStripe,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    settings: Settings,
    jobs: ListSender,
    *,
    late_limit: int | None,
    buyers: int,
) -> FundedShop:
    """The lamp campaign backed by one backer and funded, its lamp kept on sale after the deadline at 449.00 (the
    maker chose it in the draft; written straight here), `late_limit` of them."""
    shop = await launched_shop(client, sessions)
    [backer, *others] = await many_backers(sessions, 1 + buyers)
    async with sessions.begin() as session:
        session.add(
            LateReward(
                tier_id=uuid.UUID(shop.tier_id),
                campaign_id=uuid.UUID(shop.campaign["id"]),
                price=LATE_PRICE,
                quantity_limit=late_limit,
                remaining=late_limit,
            )
        )
    await back_lamp(client, stripe, shop, backer)
    await fund(client, sessions, engine, gateway, settings, jobs, shop)
    return FundedShop(shop, others)


async def pay_in_browser(stripe: EmbeddedStripe, payment_intent_id: str, card: str = CARD_OK) -> dict[str, Any]:
    """What Stripe.js's confirmCardPayment does in the buyer's browser: the card goes to Stripe with the
    PaymentIntent, which is confirmed (and, for a card whose bank asks, authenticated). Our server never sees the
    card. localstripe takes these steps only with the secret key; real Stripe takes them from Stripe.js."""
    async with stripe_http(stripe) as browser:
        method = await browser.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": card,
                "card[exp_month]": "12",
                "card[exp_year]": "2030",
                "card[cvc]": "123",
            },
        )
        assert method.status_code == 200, method.text
        given = await browser.post(
            f"/v1/payment_intents/{payment_intent_id}", data={"payment_method": method.json()["id"]}
        )
        assert given.status_code == 200, given.text
        confirmed = await browser.post(f"/v1/payment_intents/{payment_intent_id}/confirm")
        assert confirmed.status_code == 200, confirmed.text
        intent = dict(confirmed.json())
        if intent["status"] == "requires_action":
            authenticated = await browser.post(
                f"/v1/payment_intents/{payment_intent_id}/_authenticate",
                data={"client_secret": intent["client_secret"], "success": "true"},
            )
            assert authenticated.status_code == 200, authenticated.text
            intent = dict(authenticated.json())
        return intent


async def preorder(client: httpx.AsyncClient, funded: FundedShop, buyer: Actor) -> dict[str, Any]:
    made = await client.post(funded.preorders, json=funded.body(), headers=buyer.headers)
    assert made.status_code == 201, made.text
    return dict(made.json())


async def collections_of(sessions: async_sessionmaker[AsyncSession], pledge_id: str) -> tuple[int, int]:
    """(charge attempts, ledger collections) of one pledge."""
    async with sessions() as session:
        attempts = await session.scalar(
            select(func.count()).select_from(ChargeAttempt).where(ChargeAttempt.pledge_id == uuid.UUID(pledge_id))
        )
        booked = await session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.pledge_id == uuid.UUID(pledge_id), LedgerTransaction.kind == "pledge_collected")
        )
    return int(attempts or 0), int(booked or 0)


async def test_a_preorder_is_charged_at_the_late_price_once_with_the_campaigns_fees_and_joins_a_batch(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    funded = await funded_shop(
        stripe_client, stripe_server, sessions, engine, gateway, stripe_settings, jobs, late_limit=None, buyers=2
    )
    buyer, other = funded.buyers
    before = (
        await stripe_client.get(f"{A}/campaigns/{funded.shop.campaign['id']}/ledger", headers=funded.shop.maker.headers)
    ).json()

    # Bad input changes nothing: a tier of no campaign, a country the lamp does not ship to, the maker.
    for body, field in (
        (funded.body() | {"tier_id": str(uuid.uuid4())}, "tier_id"),
        (funded.body() | {"shipping_country": "US"}, "shipping_country"),
    ):
        refused = await stripe_client.post(funded.preorders, json=body, headers=buyer.headers)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, refused.text
    own = await stripe_client.post(funded.preorders, json=funded.body(), headers=funded.shop.maker.headers)
    assert own.status_code == 403

    made = await preorder(stripe_client, funded, buyer)
    assert made["status"] == "requires_payment_method" and made["late"] is True
    assert made["amount"] == LATE_PRICE + SHIPPING_CN and made["items"][0]["unit_amount"] == LATE_PRICE
    payment = made["payment"]
    assert payment["payment_intent_id"] and payment["client_secret"].startswith(payment["payment_intent_id"])
    # Only the buyer is given the client secret.
    seen = await stripe_client.get(f"{A}/pledges/{made['id']}", headers=funded.shop.maker.headers)
    assert seen.status_code == 200 and seen.json()["payment"] is None

    confirm = f"{A}/pledges/{made['id']}/confirm"
    early = await stripe_client.post(confirm, headers=buyer.headers)
    assert early.status_code == 409 and early.json()["type"] == "not-paid"

    intent = await pay_in_browser(stripe_server, payment["payment_intent_id"], CARD_NEEDS_AUTHENTICATION)
    assert intent["status"] == "succeeded" and intent["amount"] == made["amount"]
    paid = await stripe_client.post(confirm, headers=buyer.headers)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "collected" and paid.json()["payment"] is None
    again = await stripe_client.post(confirm, headers=buyer.headers)
    assert again.status_code == 200 and again.json()["status"] == "collected"
    assert await collections_of(sessions, made["id"]) == (1, 1)

    after = (
        await stripe_client.get(f"{A}/campaigns/{funded.shop.campaign['id']}/ledger", headers=funded.shop.maker.headers)
    ).json()
    assert after["collected"] - before["collected"] == made["amount"]
    # The same fees as the campaign's own pledges: 5 % for the platform, the space's 3 %.
    assert after["platform_fee"] - before["platform_fee"] == made["amount"] * 500 // 10_000
    assert after["sponsor_fee"] - before["sponsor_fee"] == made["amount"] * 300 // 10_000
    assert (
        after["collected"]
        - after["refunded"]
        - after["platform_fee"]
        - after["sponsor_fee"]
        - after["processor_fee"]
        - after["released"]
        == after["escrow_held"]
    )

    # Paid, it joins the first batch not yet confirmed, after the campaign's own backer.
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    async with sessions() as session:
        placed = await session.scalar(
            select(Batch.number)
            .join(Allocation, Allocation.batch_id == Batch.id)
            .where(Allocation.pledge_id == uuid.UUID(made["id"]))
        )
    assert placed == 1
    shown = await stripe_client.get(f"{A}/pledges/{made['id']}", headers=buyer.headers)
    assert shown.json()["queue"]["position"] == 2 and shown.json()["queue"]["batch"] == 1

    # A pre-order is bought as it is: no add-on can be charged later to a card given on-session.
    extra = await stripe_client.post(
        f"{A}/pledges/{made['id']}/items", json={"add_on_id": funded.shop.cable["id"]}, headers=buyer.headers
    )
    assert extra.status_code == 409 and extra.json()["type"] == "pledge-closed", extra.text

    doc = (await stripe_client.get(f"{A}/openapi.json")).json()
    assert {"201", "409", "422"} <= set(doc["paths"]["/api/v1/campaigns/{campaign_id}/preorders"]["post"]["responses"])

    # One pledge per buyer per campaign, pre-orders included.
    twice = await stripe_client.post(funded.preorders, json=funded.body(), headers=buyer.headers)
    assert twice.status_code == 409 and twice.json()["type"] == "already-pledged"

    # A campaign that ships by weight (the maker's choice in the draft; written straight here) prices a pre-order's
    # shipping by its table: the lamp's 120 g falls in the 500 g bracket, not the tier's 10.00 to China.
    async with sessions.begin() as session:
        await session.execute(
            update(Campaign)
            .where(Campaign.id == uuid.UUID(funded.shop.campaign["id"]))
            .values(
                shipping_mode="weight",
                shipping_table=[
                    {
                        "country": "CN",
                        "brackets": [{"up_to_grams": 100, "fee": 700}, {"up_to_grams": 500, "fee": 1_300}],
                    }
                ],
            )
        )
    weighed = await stripe_client.post(funded.preorders, json=funded.body(), headers=other.headers)
    assert weighed.status_code == 201, weighed.text
    assert weighed.json()["amount"] == LATE_PRICE + 1_300


async def test_a_preorder_is_refused_when_not_open_and_when_sold_out_and_the_last_unit_goes_to_one_buyer(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    live = await launched_shop(stripe_client, sessions)
    [early_buyer] = await many_backers(sessions, 1, "Early")
    too_early = await stripe_client.post(
        f"{A}/campaigns/{live.campaign['id']}/preorders",
        json={"tier_id": live.tier_id, "shipping_country": "CN", "variants": {live.lamp["id"]: {"colour": "black"}}},
        headers=early_buyer.headers,
    )
    assert too_early.status_code == 409 and too_early.json()["type"] == "not-open"

    funded = await funded_shop(
        stripe_client, stripe_server, sessions, engine, gateway, stripe_settings, jobs, late_limit=2, buyers=4
    )
    first, second, third, fourth = funded.buyers
    abandoned = await preorder(stripe_client, funded, first)
    # The last unit, wanted by two buyers at once: exactly one gets it.
    raced = await asyncio.gather(
        *(stripe_client.post(funded.preorders, json=funded.body(), headers=b.headers) for b in (second, third))
    )
    assert sorted(answer.status_code for answer in raced) == [201, 409]
    assert [answer.json()["type"] for answer in raced if answer.status_code == 409] == ["sold-out"]
    async with sessions() as session:
        late = await session.get_one(LateReward, uuid.UUID(funded.shop.tier_id), populate_existing=True)
        assert late.remaining == 0
    sold_out = await stripe_client.post(funded.preorders, json=funded.body(), headers=fourth.headers)
    assert sold_out.status_code == 409 and sold_out.json()["type"] == "sold-out"

    # An unpaid pre-order given up frees its unit; a reward the maker ended is not open.
    [unpaid] = [answer.json() for answer in raced if answer.status_code == 201]
    buyer = second if raced[0].status_code == 201 else third
    given_up = await stripe_client.delete(f"{A}/pledges/{unpaid['id']}", headers=buyer.headers)
    assert given_up.status_code == 200 and given_up.json()["status"] == "cancelled"
    async with sessions() as session:
        assert (
            await session.get_one(LateReward, uuid.UUID(funded.shop.tier_id), populate_existing=True)
        ).remaining == 1
    # One left unpaid past the pledge hold is cancelled by the sweep, and its unit goes back too.
    async with sessions.begin() as session:
        await session.execute(
            update(Pledge)
            .where(Pledge.id == uuid.UUID(abandoned["id"]))
            .values(
                created_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, stripe_settings.pledge_hold_seconds + 1)
            )
        )
    assert (await sweep(sessions, stripe_settings, jobs))["unpaid-preorders"] == 1
    assert (await pledge_row(sessions, abandoned["id"])).status == "cancelled"
    async with sessions() as session:
        assert (
            await session.get_one(LateReward, uuid.UUID(funded.shop.tier_id), populate_existing=True)
        ).remaining == 2
    ended = await stripe_client.post(
        f"{A}/campaigns/{funded.shop.campaign['id']}/late-pledges/{funded.shop.tier_id}/end",
        headers=funded.shop.maker.headers,
    )
    assert ended.status_code == 200
    closed = await stripe_client.post(funded.preorders, json=funded.body(), headers=fourth.headers)
    assert closed.status_code == 409 and closed.json()["type"] == "not-open"


async def test_the_confirm_call_and_the_webhook_at_once_record_the_payment_exactly_once(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    funded = await funded_shop(
        stripe_client, stripe_server, sessions, engine, gateway, stripe_settings, jobs, late_limit=None, buyers=1
    )
    [buyer] = funded.buyers
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)  # the plan of the campaign's own backers
        made = await preorder(stripe_client, funded, buyer)
        intent = await pay_in_browser(stripe_server, made["payment"]["payment_intent_id"])
        payload = json.dumps(stripe_event("payment_intent.succeeded", intent)).encode()
        delivered = await stripe_client.post(
            f"{A}/webhooks/stripe",
            content=payload,
            headers={
                "Stripe-Signature": stripe_signature(payload, stripe_settings.stripe_webhook_secret),
                "Content-Type": "application/json",
            },
        )
        assert delivered.status_code == 200
        confirmed, _webhooks = await asyncio.gather(
            stripe_client.post(f"{A}/pledges/{made['id']}/confirm", headers=buyer.headers),
            run_jobs(work, jobs),
        )
        assert confirmed.status_code == 200 and confirmed.json()["status"] == "collected", confirmed.text
        await run_jobs(work, jobs)
    assert await collections_of(sessions, made["id"]) == (1, 1)
    async with sessions() as session:
        books = await campaign_ledger(session, uuid.UUID(funded.shop.campaign["id"]))
    assert books.collected == LAMP_PRICE + SHIPPING_CN + made["amount"]


async def test_a_paid_preorder_is_cancelled_with_a_full_refund_until_its_batch_is_confirmed(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    funded = await funded_shop(
        stripe_client, stripe_server, sessions, engine, gateway, stripe_settings, jobs, late_limit=5, buyers=2
    )
    keeper, leaver = funded.buyers
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        paid = {}
        for buyer in (keeper, leaver):
            made = await preorder(stripe_client, funded, buyer)
            await pay_in_browser(stripe_server, made["payment"]["payment_intent_id"])
            answer = await stripe_client.post(f"{A}/pledges/{made['id']}/confirm", headers=buyer.headers)
            assert answer.json()["status"] == "collected"
            paid[buyer.email] = made
        await run_jobs(work, jobs)

        left = paid[leaver.email]
        cancelled = await stripe_client.delete(f"{A}/pledges/{left['id']}", headers=leaver.headers)
        assert cancelled.status_code == 200, cancelled.text
        twice = await stripe_client.delete(f"{A}/pledges/{left['id']}", headers=leaver.headers)
        assert twice.status_code == 409
        # Planned before its refund has gone through, it is already out of its batch.
        async with sessions.begin() as session:
            await plan_campaign(session, uuid.UUID(funded.shop.campaign["id"]))
        async with sessions() as session:
            assert await session.get(Allocation, uuid.UUID(left["id"])) is None
        await run_jobs(work, jobs)  # the refund at Stripe, then the plan without it
    assert (await pledge_row(sessions, left["id"])).status == "refunded"
    assert (await gateway.retrieve_charge(left["payment"]["payment_intent_id"])).amount_refunded == left["amount"]
    async with sessions() as session:
        assert (
            await session.get_one(LateReward, uuid.UUID(funded.shop.tier_id), populate_existing=True)
        ).remaining == 4
        books = await campaign_ledger(session, uuid.UUID(funded.shop.campaign["id"]))
        in_batch = await session.scalar(
            select(Allocation.pledge_id).where(Allocation.pledge_id == uuid.UUID(left["id"]))
        )
    assert books.refunded == left["amount"] and in_batch is None

    # Once its batch is confirmed for production, the buyer cannot cancel: only the space's refund remains.
    kept = paid[keeper.email]
    async with sessions.begin() as session:
        await session.execute(
            update(Batch)
            .where(Batch.campaign_id == uuid.UUID(funded.shop.campaign["id"]))
            .values(status="confirmed", confirmed_at=func.now())
        )
        await session.execute(
            update(Campaign).where(Campaign.id == uuid.UUID(funded.shop.campaign["id"])).values(status="fulfilling")
        )
    refused = await stripe_client.delete(f"{A}/pledges/{kept['id']}", headers=keeper.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "batch-confirmed", refused.text
    assert (await pledge_row(sessions, kept["id"])).status == "collected"


async def test_the_campaign_page_sells_a_preorder_which_is_paid_and_then_cancelled_after_asking_once_more(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    funded = await funded_shop(
        stripe_client, stripe_server, sessions, engine, gateway, stripe_settings, jobs, late_limit=3, buyers=1
    )
    [buyer] = funded.buyers
    slug = funded.shop.campaign["slug"]
    page = await stripe_client.get(f"/campaigns/{slug}")
    section = page.text.split('id="preorder"')[1].split("</section>")[0]
    assert "Pre-order" in section and "449.00" in section and "3 left" in section
    assert "not planned the next batch" in section
    chinese = await stripe_client.get(f"/campaigns/{slug}?lang=zh_CN")
    assert "预购" in chinese.text.split('id="preorder"')[1].split("</section>")[0]

    async with logged_in(stripe_client, buyer) as browser:
        form_page = f"/campaigns/{slug}/preorder?tier={funded.shop.tier_id}"
        shown = await browser.get(form_page)
        assert shown.status_code == 200 and "449.00" in shown.text and "Estimated ship month" in shown.text
        action = f"/campaigns/{slug}/preorder"
        variant = f"variant.{funded.shop.lamp['id']}.colour"
        nowhere = await post_form(browser, action, {"tier": funded.shop.tier_id, variant: "black"}, form_page=form_page)
        assert nowhere.status_code == 422 and "Choose a country this reward ships to" in nowhere.text
        made = await post_form(
            browser,
            action,
            {"tier": funded.shop.tier_id, variant: "white", "shipping_country": "CN"},
            form_page=form_page,
        )
        assert made.status_code == 303, made.text
        pay_url = made.headers["location"]
        pledge_id = pay_url.split("/")[3]
        pay = await browser.get(pay_url)
        assert pay.status_code == 200 and 'id="pay-form"' in pay.text and "459.00" in pay.text
        secret = pay.text.split('data-client-secret="')[1].split('"')[0]
        await pay_in_browser(stripe_server, secret.split("_secret_")[0])
        token = await csrf_from(browser, pay_url)
        confirmed = await browser.post(f"{A}/pledges/{pledge_id}/confirm", headers={"X-CSRF-Token": token})
        assert confirmed.status_code == 200 and confirmed.json()["status"] == "collected", confirmed.text

        mine = f"/me/pledges/{pledge_id}"
        detail = await browser.get(mine)
        assert 'id="preorder-cancel"' in detail.text
        asked = await post_form(browser, f"{mine}/cancel-preorder", {}, form_page=mine)
        assert asked.status_code == 200 and "459.00 is refunded to your card in full" in asked.text
        assert (await pledge_row(sessions, pledge_id)).cancelled_at is None
        done = await post_form(browser, f"{mine}/cancel-preorder", {"confirm": "yes"}, form_page=mine)
        assert done.status_code == 303 and done.headers["location"] == f"{mine}?done=preorder-cancelled"
        chinese_detail = await browser.get(f"{mine}?lang=zh_CN")
        assert chinese_detail.status_code == 200 and 'id="preorder-cancel"' not in chinese_detail.text
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    assert (await pledge_row(sessions, pledge_id)).status == "refunded"
