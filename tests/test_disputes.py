"""Disputes (chargebacks): the disputed amount leaves escrow while the dispute is open, comes back when it is won and
is lost for good when it is lost; once per dispute, whatever the order and number of Stripe's deliveries."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payments.gateway import StripeGateway
from payments.ledger import campaign_ledger
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import stripe_event, stripe_signature
from tests.money_helpers import payment_intents, run_jobs, stripe_work
from tests.test_suspension import PAIR, funded_campaign

WEBHOOK = "/api/v1/webhooks/stripe"


def dispute(intent: dict[str, Any], status: str, *, dispute_id: str, amount: int) -> dict[str, Any]:
    """A Dispute object shaped as Stripe sends it (localstripe has none)."""
    charge = intent["latest_charge"]
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "currency": intent["currency"],
        "charge": charge if isinstance(charge, str) else charge["id"],
        "payment_intent": intent["id"],
        "status": status,
        "reason": "fraudulent",
        "created": int(time.time()),
        "livemode": False,
        "is_charge_refundable": False,
        "balance_transactions": [],
        "evidence": {},
        "metadata": {},
    }


async def deliver(client: httpx.AsyncClient, secret: str, event: dict[str, Any]) -> None:
    payload = json.dumps(event).encode()
    response = await client.post(
        WEBHOOK,
        content=payload,
        headers={"Stripe-Signature": stripe_signature(payload, secret), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text


def assert_books_add_up(books: dict[str, Any]) -> None:
    assert (
        books["collected"]
        - books["refunded"]
        - books["platform_fee"]
        - books["sponsor_fee"]
        - books["processor_fee"]
        - books["released"]
        - books["disputed"]
        - books["dispute_lost"]
        == books["escrow_held"]
    )


async def test_a_dispute_takes_its_amount_out_of_escrow_and_a_won_one_brings_it_back(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, maker, operator, backings = await funded_campaign(
        stripe_client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, [0, 500]
    )
    cid = campaign["id"]
    secret = stripe_settings.stripe_webhook_secret
    before = (await stripe_client.get(f"/api/v1/campaigns/{cid}/ledger", headers=operator.headers)).json()
    assert before["disputed"] == 0 and before["dispute_lost"] == 0
    [intent] = await payment_intents(stripe_server, pledge_id=backings[1].id)
    dispute_id = "dp_" + secrets.token_hex(12)
    amount = PAIR + 500

    await deliver(stripe_client, secret, stripe_event("charge.dispute.created", dispute(
        intent, "needs_response", dispute_id=dispute_id, amount=amount)))  # fmt: skip
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)

    opened = (await stripe_client.get(f"/api/v1/campaigns/{cid}/ledger", headers=maker.headers)).json()
    assert opened["disputed"] == amount
    assert opened["escrow_held"] == before["escrow_held"] - amount
    assert opened["collected"] == before["collected"]
    assert_books_add_up(opened)
    public = (await stripe_client.get(f"/api/v1/campaigns/{cid}/ledger/public")).json()
    assert public["disputed"] == amount and public["dispute_lost"] == 0
    assert public["escrow_held"] == opened["escrow_held"]
    page = await stripe_client.get(f"/campaigns/{campaign['slug']}/escrow")
    assert page.status_code == 200
    assert "Held in open disputes" in page.text

    await deliver(stripe_client, secret, stripe_event("charge.dispute.closed", dispute(
        intent, "won", dispute_id=dispute_id, amount=amount)))  # fmt: skip
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)

    won = (await stripe_client.get(f"/api/v1/campaigns/{cid}/ledger", headers=operator.headers)).json()
    assert won["disputed"] == 0 and won["dispute_lost"] == 0
    assert won["escrow_held"] == before["escrow_held"]
    assert_books_add_up(won)


async def test_a_lost_dispute_is_booked_once_whatever_the_order_and_number_of_deliveries(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, operator, backings = await funded_campaign(
        stripe_client, stripe_server, sessions, stripe_settings, engine, gateway, jobs, [0, 0]
    )
    cid = campaign["id"]
    secret = stripe_settings.stripe_webhook_secret
    before = (await stripe_client.get(f"/api/v1/campaigns/{cid}/ledger", headers=operator.headers)).json()
    [intent] = await payment_intents(stripe_server, pledge_id=backings[0].id)
    dispute_id = "dp_" + secrets.token_hex(12)
    created = stripe_event(
        "charge.dispute.created", dispute(intent, "needs_response", dispute_id=dispute_id, amount=PAIR)
    )
    closed = stripe_event("charge.dispute.closed", dispute(intent, "lost", dispute_id=dispute_id, amount=PAIR))

    # The closing first, then the opening; each delivered twice, and each stored event applied twice at once.
    for event in (closed, closed, created, created):
        await deliver(stripe_client, secret, event)
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs, twice_at_once=True)

    lost = (await stripe_client.get(f"/api/v1/campaigns/{cid}/ledger", headers=operator.headers)).json()
    assert lost["disputed"] == 0
    assert lost["dispute_lost"] == PAIR
    assert lost["escrow_held"] == before["escrow_held"] - PAIR
    assert_books_add_up(lost)
    async with sessions() as session:
        books = await campaign_ledger(session, uuid.UUID(cid))
    assert books.dispute_lost == PAIR

    # The same dispute's events again, with new ids (Stripe's retries of its own, say): nothing moves.
    for event in (created, closed):
        await deliver(stripe_client, secret, event | {"id": "evt_" + secrets.token_hex(12)})
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
    assert (await stripe_client.get(f"/api/v1/campaigns/{cid}/ledger", headers=operator.headers)).json() == lost
