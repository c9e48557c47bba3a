"""Delivering any sequence of Stripe's events twice, or in another order, ends in the same state.

Real objects are made in localstripe once: pledges whose cards were saved through SetupIntents, charges the worker
sent and then died before recording (one declined), a partial refund and a full one made from Stripe's dashboard,
and a pledge whose backer never came back to confirm it. Their events are wrapped as Stripe would send them, signed,
and delivered to the real endpoint in orders hypothesis generates, with duplicates (the same event again, and the
same object in an event of another id), each applied by the real handler. Every order ends in the same pledges,
attempts, books and mails.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Mail, Pledge
from payments.charging import next_charge_call
from payments.gateway import CardDeclined, StripeGateway
from payments.ledger import campaign_ledger
from payments.models import ChargeAttempt, LedgerTransaction
from payments.tasks import process_webhook
from payments.webhooks import PROCESS_WEBHOOK
from service.broker import ListSender
from service.database import unit_of_work
from service.devservices import EmbeddedStripe
from service.metadata import target_metadata
from service.settings import Settings
from tests.database import empty_tables
from tests.helpers import (
    CARD_DECLINED_AT_CHARGE,
    CARD_OK,
    create_space,
    launched_campaign,
    make_admin,
    make_operator,
    sign_up,
    stripe_event,
    stripe_object,
    stripe_signature,
)
from tests.money_helpers import back_campaign, pass_deadline, payment_intents, save_card, sweep

WEBHOOK = "/api/v1/webhooks/stripe"
PAIR = 34_900 + 1_000
OUTSIDE_REFUND = 1_000


@dataclass
class World:
    events: list[dict[str, Any]]
    snapshot: dict[str, list[dict[str, Any]]]
    pledges: dict[str, str]  # name -> pledge id
    campaign_id: str
    first_state: dict[str, Any] | None = None


# The mails that events may send; each must go exactly once.
KINDS = ("pledge_charged", "charge_failed", "pledge_confirmed")


async def take_snapshot(sessions: async_sessionmaker[AsyncSession]) -> dict[str, list[dict[str, Any]]]:
    async with sessions() as session:
        return {
            table.name: [dict(row) for row in (await session.execute(select(table))).mappings()]
            for table in target_metadata.sorted_tables
        }


async def restore(engine: AsyncEngine, snapshot: dict[str, list[dict[str, Any]]]) -> None:
    async with engine.begin() as connection:
        await empty_tables(connection)
        for table in target_metadata.sorted_tables:
            if snapshot[table.name]:
                await connection.execute(insert(table), snapshot[table.name])


@pytest.fixture
async def world(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    gateway: StripeGateway,
) -> World:
    # No fees, so that what escrow holds of each pledge is all it paid, and a full refund fits whatever came first.
    admin = await make_admin(sessions, await sign_up(stripe_client, "Root"))
    space = await create_space(stripe_client, admin, sponsor_fee_bps=0)
    operator = await make_operator(stripe_client, admin, space)
    campaign, _maker, _ = await launched_campaign(stripe_client, sessions, goal=PAIR, space=space, operator=operator)
    a, b, c, d = await back_campaign(
        stripe_client, stripe_server, sessions, campaign, [CARD_OK, CARD_DECLINED_AT_CHARGE, CARD_OK, CARD_OK]
    )
    # Another campaign, still live: E saved a card but never came back to confirm the pledge.
    other, _, _ = await launched_campaign(stripe_client, sessions, space=space, operator=operator)
    e_backer = await sign_up(stripe_client, "Eve")
    created = await stripe_client.post(
        f"/api/v1/campaigns/{other['id']}/pledges",
        json={"tier_id": other["tiers"][1]["id"], "shipping_country": "CN"},
        headers=e_backer.headers,
    )
    assert created.status_code == 201
    await save_card(stripe_server, created.json()["payment"]["client_secret"])

    await pass_deadline(sessions, campaign["id"])
    await sweep(sessions, replace(stripe_settings, platform_fee_bps=0), ListSender())  # its jobs are lost
    # The worker recorded each attempt and called Stripe, then died before recording a single outcome.
    for backing in (a, b, c, d):
        async with sessions.begin() as session:
            call = await next_charge_call(session, uuid.UUID(backing.id))
        assert call is not None
        with contextlib.suppress(CardDeclined):
            await gateway.charge_off_session(
                pledge_id=call.pledge_id,
                attempt=call.attempt,
                amount=call.amount,
                currency=call.currency,
                customer_id=call.customer_id,
                payment_method_id=call.payment_method_id,
            )
    intents = {
        name: (await payment_intents(stripe_server, pledge_id=backing.id))[0]["id"]
        for name, backing in zip("abcd", (a, b, c, d), strict=True)
    }
    # Refunds made from Stripe's dashboard: part of C, all of D.
    await gateway.refund(reference="dashboard-c", payment_intent_id=intents["c"], amount=OUTSIDE_REFUND)
    await gateway.refund(reference="dashboard-d", payment_intent_id=intents["d"], amount=PAIR)

    async def fetched(path: str) -> dict[str, Any]:
        return await stripe_object(stripe_server, path)

    events = []
    setups = [backing.pledge["id"] for backing in (a, b, c, d)] + [created.json()["id"]]
    async with sessions() as session:
        setup_ids = list(await session.scalars(select(Pledge.setup_intent_id).where(Pledge.id.in_(setups))))
    for setup_intent_id in setup_ids:
        events.append(stripe_event("setup_intent.succeeded", await fetched(f"/v1/setup_intents/{setup_intent_id}")))
    for name in "acd":
        events.append(stripe_event("payment_intent.succeeded", await fetched(f"/v1/payment_intents/{intents[name]}")))
    events.append(stripe_event("payment_intent.payment_failed", await fetched(f"/v1/payment_intents/{intents['b']}")))
    for name in "cd":
        intent = await fetched(f"/v1/payment_intents/{intents[name]}")
        charge = intent["latest_charge"]
        charge = charge if isinstance(charge, dict) else await fetched(f"/v1/charges/{charge}")
        events.append(stripe_event("charge.refunded", charge))
    assert len(events) == 11

    pledges = {name: backing.id for name, backing in zip("abcd", (a, b, c, d), strict=True)}
    pledges["e"] = created.json()["id"]
    return World(events, await take_snapshot(sessions), pledges, campaign["id"])


async def final_state(sessions: async_sessionmaker[AsyncSession], world: World) -> dict[str, Any]:
    names = {uuid.UUID(pledge_id): name for name, pledge_id in world.pledges.items()}
    async with sessions() as session:
        pledges = {names[p.id]: p.status for p in await session.scalars(select(Pledge).where(Pledge.id.in_(names)))}
        attempts = sorted(
            (names[a.pledge_id], a.attempt, a.status, a.payment_intent_id is not None)
            for a in await session.scalars(select(ChargeAttempt))
        )
        books = await campaign_ledger(session, uuid.UUID(world.campaign_id))
        transactions = sorted(
            (t.kind, t.reference, names.get(t.pledge_id) if t.pledge_id else None)
            for t in await session.scalars(select(LedgerTransaction))
        )
        mails = Counter((m.kind, m.to_address) for m in await session.scalars(select(Mail)))
        campaigns = sorted(await session.scalars(select(Campaign.status)))
    return {
        "pledges": pledges,
        "attempts": attempts,
        "books": books,
        "transactions": transactions,
        "mails": mails,
        "campaigns": campaigns,
    }


deliveries = st.tuples(
    st.permutations(list(range(11))),
    # Duplicates: (which event, where in the sequence, delivered again as is or re-sent under a new event id).
    st.lists(st.tuples(st.integers(0, 10), st.integers(0, 30), st.booleans()), min_size=1, max_size=8),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=deliveries)
async def test_delivering_events_twice_or_in_another_order_ends_in_the_same_state(
    order: tuple[list[int], list[tuple[int, int, bool]]],
    world: World,
    stripe_client: httpx.AsyncClient,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    await restore(engine, world.snapshot)
    jobs.jobs.clear()
    permutation, duplicates = order
    sequence = [world.events[i] for i in permutation]
    for index, position, fresh_id in duplicates:
        event = world.events[index]
        sequence.insert(position, {**event, "id": "evt_" + uuid.uuid4().hex[:24]} if fresh_id else event)

    def transaction() -> Any:
        return unit_of_work(sessions, jobs)

    for event in sequence:
        payload = json.dumps(event).encode()
        response = await stripe_client.post(
            WEBHOOK,
            content=payload,
            headers={
                "Stripe-Signature": stripe_signature(payload, stripe_settings.stripe_webhook_secret),
                "Content-Type": "application/json",
            },
        )
        assert response.status_code == 200, response.text
        queued, jobs.jobs = (
            [job for job in jobs.jobs if job.actor_name == PROCESS_WEBHOOK],
            [job for job in jobs.jobs if job.actor_name != PROCESS_WEBHOOK],
        )
        for job in queued:
            await process_webhook(transaction, gateway, *job.args)

    state = await final_state(sessions, world)

    assert state["pledges"] == {
        "a": "collected",
        "b": "errored",
        "c": "partially_refunded",
        "d": "refunded",
        "e": "active",
    }
    assert state["attempts"] == [
        ("a", 1, "succeeded", True),
        ("b", 1, "failed", True),
        ("c", 1, "succeeded", True),
        ("d", 1, "succeeded", True),
    ]
    books = state["books"]
    assert (books.collected, books.refunded, books.fees) == (3 * PAIR, OUTSIDE_REFUND + PAIR, 0)
    assert books.escrow_held == 2 * PAIR - OUTSIDE_REFUND
    assert [kind for kind, _reference, _pledge in state["transactions"]].count("pledge_collected") == 3
    mails = state["mails"]
    assert sorted(kind for (kind, _to), count in mails.items() for _ in range(count) if kind in KINDS) == sorted(
        ["pledge_charged"] * 3 + ["charge_failed"] + ["pledge_confirmed"] * 5
    )
    assert sorted(state["campaigns"]) == ["live", "successful"]
    # And beyond what is asserted above, every order leaves exactly what the first one did.
    if world.first_state is None:
        world.first_state = state
    assert state == world.first_state
