from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from campaigns.models import Mail, Pledge, Tier
from service.devservices import EmbeddedStripe
from tests.helpers import (
    CARD_DECLINED_AT_SETUP,
    Actor,
    confirm_card_setup,
    launched_campaign,
    many_backers,
    sign_up,
)


async def pledge(
    client: httpx.AsyncClient, backer: Actor, campaign: dict[str, Any], tier: int | None = 0, **fields: Any
) -> httpx.Response:
    body: dict[str, Any] = {"tier_id": campaign["tiers"][tier]["id"] if tier is not None else None}
    body |= {"shipping_country": "CN"} if tier is not None else {}
    body |= fields
    return await client.post(f"/api/v1/campaigns/{campaign['id']}/pledges", json=body, headers=backer.headers)


async def confirmed_pledge(
    client: httpx.AsyncClient, stripe: EmbeddedStripe, backer: Actor, campaign: dict[str, Any], tier: int = 0
) -> dict[str, Any]:
    created = await pledge(client, backer, campaign, tier)
    assert created.status_code == 201, created.text
    assert (await confirm_card_setup(stripe, created.json()["payment"]["client_secret"])).status_code == 200
    confirmed = await client.post(f"/api/v1/pledges/{created.json()['id']}/confirm", headers=backer.headers)
    assert confirmed.status_code == 200, confirmed.text
    return dict(confirmed.json())


async def test_a_backer_pledges_saves_a_card_and_the_pledge_becomes_active(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Bea")
    created = await pledge(stripe_client, backer, campaign, 0, bonus=500)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "requires_payment_method"
    assert body["amount"] == 14_900 + 500 + 1_000
    assert body["shipping_fee"] == 1_000 and body["currency"] == "CNY"
    assert body["payment"]["provider"] == "stripe"
    assert body["payment"]["setup_intent_id"].startswith("seti_")
    assert body["payment"]["client_secret"].startswith(body["payment"]["setup_intent_id"])
    assert body["payment"]["publishable_key"] == stripe_server.publishable_key

    # The server asks Stripe; before the card is given, confirm refuses.
    early = await stripe_client.post(f"/api/v1/pledges/{body['id']}/confirm", headers=backer.headers)
    assert early.status_code == 409 and early.json()["type"] == "card-not-saved"

    assert (await confirm_card_setup(stripe_server, body["payment"]["client_secret"])).status_code == 200
    confirmed = await stripe_client.post(f"/api/v1/pledges/{body['id']}/confirm", headers=backer.headers)
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "active"
    assert confirmed.json()["payment"] is None

    shown = (await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}")).json()
    assert shown["pledged"] == body["amount"] and shown["backers"] == 1
    assert shown["tiers"][0]["remaining"] == 9
    mine = (await stripe_client.get("/api/v1/me/pledges", headers=backer.headers)).json()
    assert [p["id"] for p in mine["items"]] == [body["id"]]
    async with sessions() as session:
        kinds = list(await session.scalars(select(Mail.kind).where(Mail.to_address == backer.email)))
    assert "pledge_confirmed" in kinds


async def test_a_card_declined_at_set_up_leaves_the_pledge_unconfirmed(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Dee")
    created = (await pledge(stripe_client, backer, campaign)).json()
    declined = await confirm_card_setup(stripe_server, created["payment"]["client_secret"], CARD_DECLINED_AT_SETUP)
    assert declined.status_code == 402
    confirm = await stripe_client.post(f"/api/v1/pledges/{created['id']}/confirm", headers=backer.headers)
    assert confirm.status_code == 409
    assert (await stripe_client.get(f"/api/v1/pledges/{created['id']}", headers=backer.headers)).json()[
        "status"
    ] == "requires_payment_method"
    shown = (await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}")).json()
    assert shown["pledged"] == 0 and shown["backers"] == 0


async def test_a_pledge_whose_card_set_up_was_lost_in_a_crash_gets_one_and_is_confirmed(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Lin")
    created = (await pledge(stripe_client, backer, campaign)).json()
    async with sessions.begin() as session:
        # What a server killed between reserving the slot and Stripe's answer leaves behind.
        await session.execute(
            update(Pledge)
            .where(Pledge.id == created["id"])
            .values(setup_intent_id=None, setup_intent_client_secret=None)
        )
    lost = await stripe_client.get(f"/api/v1/pledges/{created['id']}", headers=backer.headers)
    assert lost.json()["payment"]["client_secret"] is None
    early = await stripe_client.post(f"/api/v1/pledges/{created['id']}/confirm", headers=backer.headers)
    assert early.status_code == 409 and early.json()["type"] == "card-not-saved"

    url = f"/api/v1/pledges/{created['id']}/payment-method"
    resumed = await stripe_client.post(url, headers=backer.headers)
    assert resumed.status_code == 200, resumed.text
    setup = resumed.json()["payment"]
    assert (
        setup["setup_intent_id"].startswith("seti_")
        and setup["setup_intent_id"] != created["payment"]["setup_intent_id"]
    )
    again = await stripe_client.post(url, headers=backer.headers)
    assert again.json()["payment"]["setup_intent_id"] == setup["setup_intent_id"], "asked twice: one set-up"

    assert (await confirm_card_setup(stripe_server, setup["client_secret"])).status_code == 200
    confirmed = await stripe_client.post(f"/api/v1/pledges/{created['id']}/confirm", headers=backer.headers)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "active"
    shown = (await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}")).json()
    assert shown["backers"] == 1 and shown["tiers"][0]["remaining"] == 9


async def test_a_second_pledge_by_the_same_backer_is_refused_until_the_first_is_cancelled(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Eve")
    first = await confirmed_pledge(stripe_client, stripe_server, backer, campaign)
    again = await pledge(stripe_client, backer, campaign, 1)
    assert again.status_code == 409 and again.json()["type"] == "already-pledged"
    tiers = (await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}")).json()["tiers"]
    assert tiers[0]["remaining"] == 9  # the refused pledge gave its slot back

    cancelled = await stripe_client.delete(f"/api/v1/pledges/{first['id']}", headers=backer.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}")).json()["tiers"][0]["remaining"] == 10
    assert (await pledge(stripe_client, backer, campaign, 1)).status_code == 201


async def test_changing_tier_moves_the_slot_and_reprices(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Fay")
    active = await confirmed_pledge(stripe_client, stripe_server, backer, campaign, 1)
    changed = await stripe_client.patch(
        f"/api/v1/pledges/{active['id']}",
        json={"tier_id": campaign["tiers"][0]["id"], "bonus": 100, "shipping_country": "US"},
        headers=backer.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["amount"] == 14_900 + 100 + 5_000
    assert changed.json()["tier_id"] == campaign["tiers"][0]["id"]
    tiers = (await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}")).json()["tiers"]
    assert tiers[0]["remaining"] == 9


async def test_changing_to_a_sold_out_tier_leaves_the_pledge_as_it_was(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, limited_quantity=1)
    first = await sign_up(stripe_client, "Gil")
    await confirmed_pledge(stripe_client, stripe_server, first, campaign, 0)
    second = await sign_up(stripe_client, "Hal")
    mine = await confirmed_pledge(stripe_client, stripe_server, second, campaign, 1)
    refused = await stripe_client.patch(
        f"/api/v1/pledges/{mine['id']}",
        json={"tier_id": campaign["tiers"][0]["id"], "shipping_country": "CN"},
        headers=second.headers,
    )
    assert refused.status_code == 409 and refused.json()["type"] == "sold-out"
    after = (await stripe_client.get(f"/api/v1/pledges/{mine['id']}", headers=second.headers)).json()
    assert after["tier_id"] == campaign["tiers"][1]["id"] and after["amount"] == mine["amount"]


async def test_bad_pledges_name_the_field_and_change_nothing(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, _operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Ivy")
    no_country = await pledge(stripe_client, backer, campaign, 0, shipping_country=None)
    assert no_country.status_code == 422 and no_country.json()["errors"][0]["field"] == "shipping_country"
    bad_country = await pledge(stripe_client, backer, campaign, 0, shipping_country="XX")
    assert bad_country.status_code == 422
    negative = await pledge(stripe_client, backer, campaign, 0, bonus=-1)
    assert negative.status_code == 422 and negative.json()["errors"][0]["field"] == "bonus"
    foreign_tier = await stripe_client.post(
        f"/api/v1/campaigns/{campaign['id']}/pledges",
        json={"tier_id": "00000000-0000-0000-0000-000000000000", "shipping_country": "CN"},
        headers=backer.headers,
    )
    assert foreign_tier.status_code == 422 and foreign_tier.json()["errors"][0]["field"] == "tier_id"
    nothing = await pledge(stripe_client, backer, campaign, None, bonus=0)
    assert nothing.status_code == 422
    own = await pledge(stripe_client, maker, campaign, 0)
    assert own.status_code == 403
    anonymous = await stripe_client.post(f"/api/v1/campaigns/{campaign['id']}/pledges", json={"tier_id": None})
    assert anonymous.status_code == 401
    unknown = await stripe_client.post(
        "/api/v1/campaigns/00000000-0000-0000-0000-000000000000/pledges",
        json={"tier_id": None, "bonus": 100},
        headers=backer.headers,
    )
    assert unknown.status_code == 404
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Pledge)) == 0


async def test_a_closed_campaign_takes_no_pledges(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions)
    async with sessions.begin() as session:
        from campaigns.models import Campaign

        await session.execute(update(Campaign).where(Campaign.id == campaign["id"]).values(ends_at=func.now()))
    backer = await sign_up(stripe_client, "Jo")
    refused = await pledge(stripe_client, backer, campaign)
    assert refused.status_code == 409 and refused.json()["type"] == "not-live"


async def test_who_sees_a_pledge(
    stripe_client: httpx.AsyncClient, stripe_server: EmbeddedStripe, sessions: async_sessionmaker[AsyncSession]
) -> None:
    campaign, maker, operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Kim")
    stranger = await sign_up(stripe_client, "Lou")
    mine = await confirmed_pledge(stripe_client, stripe_server, backer, campaign)
    url = f"/api/v1/pledges/{mine['id']}"
    for actor in (backer, maker, operator):
        assert (await stripe_client.get(url, headers=actor.headers)).status_code == 200
    assert (await stripe_client.get(url, headers=stranger.headers)).status_code == 404
    assert (await stripe_client.get(url)).status_code == 401
    assert (await stripe_client.delete(url, headers=stranger.headers)).status_code == 404
    listed = await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}/pledges", headers=maker.headers)
    assert [p["id"] for p in listed.json()["items"]] == [mine["id"]]
    assert (
        await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}/pledges", headers=stranger.headers)
    ).status_code == 403


async def test_an_unconfirmed_pledge_expires_and_frees_its_slot(
    stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from campaigns.pledges.service import expire_unconfirmed_pledges

    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, limited_quantity=1)
    backer = await sign_up(stripe_client, "Max")
    held = (await pledge(stripe_client, backer, campaign)).json()
    other = await sign_up(stripe_client, "Ned")
    assert (await pledge(stripe_client, other, campaign)).status_code == 409
    async with sessions.begin() as session:
        await session.execute(
            update(Pledge)
            .where(Pledge.id == held["id"])
            .values(created_at=func.now() - func.make_interval(0, 0, 0, 0, 2))
        )
        assert await expire_unconfirmed_pledges(session, hold_seconds=3600) == 1
    assert (await pledge(stripe_client, other, campaign)).status_code == 201


async def test_when_stripe_fails_the_reservation_is_given_back(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # `client` points Stripe at a closed port: the SetupIntent cannot be made.
    campaign, _maker, _operator = await launched_campaign(client, sessions, limited_quantity=1)
    backer = await sign_up(client, "Oz")
    async with sessions.begin() as session:
        from payments.models import StripeCustomer

        session.add(StripeCustomer(user_id=backer.id, customer_id="cus_preexisting"))
    failed = await pledge(client, backer, campaign)
    assert failed.status_code == 503
    async with sessions() as session:
        tier = await session.get_one(Tier, campaign["tiers"][0]["id"])
        assert tier.remaining == 1
        statuses = list(await session.scalars(select(Pledge.status)))
    assert statuses == ["cancelled"]


@pytest.mark.slow
async def test_sixty_backers_rushing_a_tier_of_twenty_get_exactly_twenty_slots(
    stripe_settings: Any, stripe_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from service.app import create_app
    from tests.helpers import serving

    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, limited_quantity=20)
    backers = await many_backers(sessions, 60, "Rush")
    app = create_app(stripe_settings, engine_pool=20)
    async with serving(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        responses = await asyncio.gather(*(pledge(http, b, campaign) for b in backers))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] * 20 + [409] * 40
        assert all(r.json()["type"] == "sold-out" for r in responses if r.status_code == 409)

        # The same race when changing tier: 20 pledges on the unlimited tier rush a limited tier with 10 left.
        async with sessions.begin() as session:
            await session.execute(
                update(Tier).where(Tier.id == campaign["tiers"][0]["id"]).values(quantity_limit=30, remaining=10)
            )
        winners = [b for b, r in zip(backers, responses, strict=True) if r.status_code == 201]
        losers = [b for b, r in zip(backers, responses, strict=True) if r.status_code == 409]
        movers = []
        for b in losers[:20]:
            created = await pledge(http, b, campaign, 1)
            assert created.status_code == 201
            movers.append((b, created.json()["id"]))
        changes = await asyncio.gather(
            *(
                http.patch(
                    f"/api/v1/pledges/{pid}",
                    json={"tier_id": campaign["tiers"][0]["id"], "shipping_country": "CN"},
                    headers=b.headers,
                )
                for b, pid in movers
            )
        )
        assert sorted(r.status_code for r in changes) == [200] * 10 + [409] * 10
    async with sessions() as session:
        tier = await session.get_one(Tier, campaign["tiers"][0]["id"])
        holding = await session.scalar(
            select(func.count()).where(Pledge.tier_id == tier.id, Pledge.status != "cancelled")
        )
    assert tier.remaining == 0 and holding == 30
    assert len(winners) == 20
