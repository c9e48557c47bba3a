"""Pledging calls Stripe with no database connection held, and a refused pledge costs no call to Stripe at all.

A connection held across a call to Stripe is a connection that 200 backers rushing a launch wait for, so the app's
pool is watched at the moment of every call.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Pledge, Tier
from payments.models import StripeCustomer
from service.devservices import EmbeddedStripe
from tests.helpers import launched_campaign, sign_up, stripe_object


class PoolWatchingGateway:
    """The real gateway (on localstripe), noting how many of the app's database connections were checked out when
    each call to Stripe began."""

    def __init__(self, gateway: Any, engine: AsyncEngine) -> None:
        self._gateway = gateway
        self._engine = engine
        self.calls: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._gateway, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        async def watched(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, self._engine.pool.checkedout()))  # type: ignore[attr-defined]
            return await attribute(*args, **kwargs)

        return watched


def watch_stripe(client: httpx.AsyncClient) -> PoolWatchingGateway:
    state = client.app.state  # type: ignore[attr-defined]
    watcher = PoolWatchingGateway(state.gateway, state.engine)
    state.gateway = watcher
    return watcher


async def pledge(client: httpx.AsyncClient, backer: Any, campaign: dict[str, Any]) -> httpx.Response:
    body = {"tier_id": campaign["tiers"][0]["id"], "shipping_country": "CN"}
    return await client.post(f"/api/v1/campaigns/{campaign['id']}/pledges", json=body, headers=backer.headers)


async def test_a_first_pledge_calls_stripe_with_no_database_connection_held(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    other, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Ada")
    stripe = watch_stripe(stripe_client)

    assert (await pledge(stripe_client, backer, campaign)).status_code == 201
    assert (await pledge(stripe_client, backer, other)).status_code == 201

    # the second pledge reuses the backer's Customer
    assert stripe.calls == [("create_customer", 0), ("create_setup_intent", 0), ("create_setup_intent", 0)]


async def test_a_sold_out_tier_refuses_the_next_pledge_without_calling_stripe(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, limited_quantity=1)
    first, second = await sign_up(stripe_client, "Bo"), await sign_up(stripe_client, "Cy")
    assert (await pledge(stripe_client, first, campaign)).status_code == 201
    stripe = watch_stripe(stripe_client)

    refused = await pledge(stripe_client, second, campaign)

    assert refused.status_code == 409 and refused.json()["type"] == "sold-out"
    assert stripe.calls == []


async def test_first_pledges_of_one_backer_racing_keep_one_customer(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaigns = [(await launched_campaign(stripe_client, sessions))[0] for _ in range(3)]
    backer = await sign_up(stripe_client, "Di")

    made: list[Callable[[], Awaitable[httpx.Response]]] = [
        lambda c=campaign: pledge(stripe_client, backer, c) for campaign in campaigns
    ]
    responses = await asyncio.gather(*(call() for call in made))

    assert [r.status_code for r in responses] == [201, 201, 201], [r.text for r in responses]
    async with sessions() as session:
        customers = list(await session.scalars(select(StripeCustomer.customer_id)))
        assert await session.scalar(select(func.count()).select_from(StripeCustomer)) == 1
    # every card is set up for the one Customer kept, and the Customers made by the losers are gone from Stripe
    for response in responses:
        intent = await stripe_object(
            stripe_server, f"/v1/setup_intents/{response.json()['payment']['setup_intent_id']}"
        )
        assert intent["customer"] == customers[0]
    at_stripe = await stripe_object(stripe_server, f"/v1/customers?email={backer.email}&limit=100")
    assert [customer["id"] for customer in at_stripe["data"]] == customers


async def test_when_the_customer_cannot_be_made_the_reservation_is_given_back(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # `client` points Stripe at a closed port: the backer's first pledge cannot make their Customer.
    campaign, _maker, _operator = await launched_campaign(client, sessions, limited_quantity=1)
    backer = await sign_up(client, "Ed")

    failed = await pledge(client, backer, campaign)

    assert failed.status_code == 503
    async with sessions() as session:
        assert await session.scalar(select(Tier.remaining).where(Tier.id == campaign["tiers"][0]["id"])) == 1
        assert list(await session.scalars(select(Pledge.status))) == ["cancelled"]
        assert await session.scalar(select(func.count()).select_from(StripeCustomer)) == 0
