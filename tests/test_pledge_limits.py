"""Limits that stop hoarding and bots: a pledge waiting for its card holds its slot 15 minutes by default, and one
client address holds at most KINDLING_MAX_OPEN_HOLDS such pledges, whichever accounts made them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Pledge
from service.app import create_app
from service.devservices import EmbeddedStripe
from service.settings import Settings, load_settings
from tests.helpers import Actor, launched_campaign, many_backers
from tests.money_helpers import save_card

LIMIT = 3


@asynccontextmanager
async def app_with_limit(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(replace(settings, max_open_holds=LIMIT), engine_pool=5)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def from_address(client: httpx.AsyncClient, address: str) -> httpx.AsyncClient:
    """A client of the same app whose requests come from `address`."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=transport.app, client=(address, 40000)), base_url="http://testserver"
    )


async def pledge(client: httpx.AsyncClient, backer: Actor, campaign: dict[str, Any]) -> httpx.Response:
    body = {"tier_id": campaign["tiers"][1]["id"], "bonus": 0, "shipping_country": "CN"}
    return await client.post(f"/api/v1/campaigns/{campaign['id']}/pledges", json=body, headers=backer.headers)


def is_too_many(response: httpx.Response) -> bool:
    return response.status_code == 409 and response.json()["type"] == "too-many-open-holds"


async def test_one_address_holds_at_most_the_limit_of_waiting_pledges_across_accounts(
    stripe_settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    stripe_server: EmbeddedStripe,
) -> None:
    async with app_with_limit(stripe_settings) as bot:
        campaign, _maker, _operator = await launched_campaign(bot, sessions)
        backers = await many_backers(sessions, LIMIT + 2)
        held = [await pledge(bot, backer, campaign) for backer in backers[:LIMIT]]
        assert [r.status_code for r in held] == [201] * LIMIT

        refused = await pledge(bot, backers[LIMIT], campaign)
        assert is_too_many(refused), refused.text
        assert str(LIMIT) in refused.json()["detail"]
        async with from_address(bot, "203.0.113.20") as elsewhere:
            assert (await pledge(elsewhere, backers[LIMIT], campaign)).status_code == 201, "another address"

        # A card saved frees the address's slot; so does a cancelled pledge.
        first = held[0].json()
        await save_card(stripe_server, first["payment"]["client_secret"])
        confirmed = await bot.post(f"/api/v1/pledges/{first['id']}/confirm", headers=backers[0].headers)
        assert confirmed.status_code == 200 and confirmed.json()["status"] == "active"
        assert (await pledge(bot, backers[LIMIT + 1], campaign)).status_code == 201
        assert is_too_many(await pledge(bot, (await many_backers(sessions, 1))[0], campaign))
        cancelled = await bot.delete(f"/api/v1/pledges/{held[1].json()['id']}", headers=backers[1].headers)
        assert cancelled.status_code == 200
        assert (await pledge(bot, (await many_backers(sessions, 1))[0], campaign)).status_code == 201

    async with sessions() as session:
        addresses = list(await session.scalars(select(Pledge.client_address).order_by(Pledge.created_at)))
    assert addresses.count("198.51.100.7") == LIMIT + 2 and addresses.count("203.0.113.20") == 1


async def test_many_accounts_pledging_at_once_from_one_address_get_exactly_the_limit(
    stripe_settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with app_with_limit(stripe_settings) as bot:
        campaign, _maker, _operator = await launched_campaign(bot, sessions)
        backers = await many_backers(sessions, 4 * LIMIT)
        answers = await asyncio.gather(*(pledge(bot, backer, campaign) for backer in backers))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * LIMIT + [409] * (3 * LIMIT), [a.text for a in answers if a.status_code not in (201, 409)]
    assert all(is_too_many(answer) for answer in answers if answer.status_code == 409)


def test_a_waiting_pledge_holds_its_slot_15_minutes_and_an_address_5_of_them_by_default() -> None:
    env = {
        "DATABASE_URL": "postgresql+asyncpg://localhost/kindling",
        "REDIS_URL": "redis://localhost:6379/0",
        "KINDLING_SECRET_KEY": "a-secret-key-that-is-long-enough",
        "STRIPE_SECRET_KEY": "sk_test_x",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_x",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
    }
    settings = load_settings(env)
    assert settings.pledge_hold_seconds == 15 * 60
    assert settings.max_open_holds == 5
    assert load_settings(env | {"KINDLING_MAX_OPEN_HOLDS": "2"}).max_open_holds == 2
    assert load_settings(env | {"KINDLING_MAX_OPEN_HOLDS": "0"}).max_open_holds == 0  # no limit
