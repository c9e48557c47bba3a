"""Stripe's webhooks: verified, stored once per event id, applied once by the worker whatever the deliveries."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.jobs import Job
from payments.gateway import PaymentGateway, StripeEvent, StripeGateway
from payments.models import WebhookEvent
from payments.tasks import Transaction, process_webhook, requeue_unapplied_webhook_events
from payments.webhooks import PROCESS_WEBHOOK, webhook_handler
from service.app import create_app
from service.broker import ListSender
from service.database import unit_of_work
from service.devservices import EmbeddedStripe
from service.settings import Settings
from tests.helpers import serving, stripe_event, stripe_signature

WEBHOOK = "/api/v1/webhooks/stripe"
FIXTURES = Path(__file__).parent / "fixtures" / "stripe_events"
CAPTURED = {path.stem: path.read_bytes() for path in sorted(FIXTURES.glob("*.json"))}

probe_calls: list[str] = []
failures_left: dict[str, int] = {}


@webhook_handler("test.kindling_probe")
async def note_probe(session: AsyncSession, gateway: PaymentGateway, event: StripeEvent) -> None:
    probe_calls.append(event.id)
    await asyncio.sleep(0.05)  # long enough for a racing second worker to arrive


@webhook_handler("test.kindling_flaky")
async def fail_at_first(session: AsyncSession, gateway: PaymentGateway, event: StripeEvent) -> None:
    if failures_left.get(event.id, 0) > 0:
        failures_left[event.id] -= 1
        raise RuntimeError("the pledge is locked elsewhere")


def encoded(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


async def deliver(
    client: httpx.AsyncClient, payload: bytes, secret: str, *, timestamp: int | None = None
) -> httpx.Response:
    signature = stripe_signature(payload, secret, timestamp=timestamp)
    return await client.post(
        WEBHOOK, content=payload, headers={"Stripe-Signature": signature, "Content-Type": "application/json"}
    )


async def stored_events(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookEvent]:
    async with sessions() as session:
        return list(await session.scalars(select(WebhookEvent).order_by(WebhookEvent.received_at)))


def transactions(sessions: async_sessionmaker[AsyncSession], jobs: ListSender) -> Transaction:
    def transaction() -> AbstractAsyncContextManager[AsyncSession]:
        return unit_of_work(sessions, jobs)

    return transaction


async def test_an_event_delivered_twice_at_once_is_stored_and_queued_once(
    client: httpx.AsyncClient, settings: Settings, sessions: async_sessionmaker[AsyncSession], jobs: ListSender
) -> None:
    payload = CAPTURED["payment_intent.succeeded"]
    event = json.loads(payload)

    first, second = await asyncio.gather(
        deliver(client, payload, settings.stripe_webhook_secret),
        deliver(client, payload, settings.stripe_webhook_secret),
    )
    third = await deliver(client, payload, settings.stripe_webhook_secret)

    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert first.json() == {"received": True}
    [stored] = await stored_events(sessions)
    assert (stored.id, stored.type, stored.object_id) == (event["id"], event["type"], event["data"]["object"]["id"])
    assert stored.payload == event
    assert jobs.jobs == [Job(PROCESS_WEBHOOK, (event["id"],))]


@pytest.mark.parametrize("event_type", sorted(CAPTURED))
async def test_each_captured_stripe_event_is_accepted(
    client: httpx.AsyncClient, settings: Settings, sessions: async_sessionmaker[AsyncSession], event_type: str
) -> None:
    event = json.loads(CAPTURED[event_type])

    response = await deliver(client, CAPTURED[event_type], settings.stripe_webhook_secret)

    assert response.status_code == 200, response.text
    [stored] = await stored_events(sessions)
    assert (stored.type, stored.object_id) == (event_type, event["data"]["object"]["id"])


async def test_a_wrong_signature_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], jobs: ListSender
) -> None:
    response = await deliver(client, CAPTURED["payment_intent.succeeded"], "whsec_someone_else")

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "bad-webhook-signature"
    assert await stored_events(sessions) == [] and jobs.jobs == []


async def test_a_body_changed_after_signing_is_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    payload = CAPTURED["payment_intent.succeeded"]
    signature = stripe_signature(payload, settings.stripe_webhook_secret)
    tampered = payload.replace(b'"amount": 2500', b'"amount": 1')

    response = await client.post(WEBHOOK, content=tampered, headers={"Stripe-Signature": signature})

    assert response.status_code == 400 and response.json()["type"] == "bad-webhook-signature"


@pytest.mark.parametrize("header", [None, "", "garbage", "t=abc,v1=00", "t=1700000000", "v1=00"])
async def test_a_missing_or_malformed_signature_header_is_refused(
    client: httpx.AsyncClient, header: str | None
) -> None:
    headers = {} if header is None else {"Stripe-Signature": header}

    response = await client.post(WEBHOOK, content=CAPTURED["payment_intent.succeeded"], headers=headers)

    assert response.status_code == 400 and response.json()["type"] == "bad-webhook-signature"


async def test_a_signature_older_than_five_minutes_is_refused(
    client: httpx.AsyncClient, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    payload = CAPTURED["payment_intent.succeeded"]
    now = int(time.time())

    stale = await deliver(client, payload, settings.stripe_webhook_secret, timestamp=now - 301)
    recent = await deliver(client, payload, settings.stripe_webhook_secret, timestamp=now - 290)

    assert stale.status_code == 400 and stale.json()["type"] == "bad-webhook-signature"
    assert recent.status_code == 200
    assert len(await stored_events(sessions)) == 1


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"type": "charge.refunded", "data": {"object": {}}}',
        b'{"id": "evt_1", "data": {"object": {}}}',
        b'{"id": "evt_1", "type": "charge.refunded"}',
        b'{"id": "evt_1", "type": "charge.refunded", "data": {"object": "ch_1"}}',
        b'{"id": 7, "type": "charge.refunded", "data": {"object": {}}}',
        b'{"id": "' + b"e" * 256 + b'", "type": "charge.refunded", "data": {"object": {}}}',
        b'{"id": "evt_1", "type": "' + b"t" * 101 + b'", "data": {"object": {}}}',
        b'{"id": "evt_1", "type": "charge.refunded", "data": {"object": {"amount": NaN}}}',
        b'{"id": "evt_1", "type": "charge.refunded", "data": {"object": {"note": "a\\u0000b"}}}',
        b"\xff\xfe{}",
    ],
)
async def test_a_signed_body_that_is_not_a_stripe_event_is_refused(
    client: httpx.AsyncClient, settings: Settings, sessions: async_sessionmaker[AsyncSession], payload: bytes
) -> None:
    response = await deliver(client, payload, settings.stripe_webhook_secret)

    assert response.status_code == 400, response.text
    assert response.json()["type"] in ("malformed-webhook-event", "bad-webhook-signature")
    assert await stored_events(sessions) == []


async def test_only_post_is_allowed(client: httpx.AsyncClient) -> None:
    response = await client.get(WEBHOOK)

    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_webhook_is_documented_as_open_and_raw(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()

    operation = document["paths"][WEBHOOK]["post"]
    assert "security" not in operation
    assert "application/json" in operation["requestBody"]["content"]
    assert {"200", "400"} <= set(operation["responses"])
    assert "401" not in operation["responses"]


async def test_an_unknown_event_type_is_acknowledged_and_marked_processed(
    client: httpx.AsyncClient,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: ListSender,
    gateway: StripeGateway,
) -> None:
    event = stripe_event("kindling.never_heard_of", {"id": "thing_1", "object": "thing"})

    response = await deliver(client, encoded(event), settings.stripe_webhook_secret)
    assert response.status_code == 200
    [job] = jobs.jobs
    await process_webhook(transactions(sessions, ListSender()), gateway, *job.args)

    [stored] = await stored_events(sessions)
    assert stored.processed_at is not None and stored.attempts == 0


async def test_the_worker_applies_an_event_once_however_often_it_runs(
    client: httpx.AsyncClient,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    jobs: ListSender,
    gateway: StripeGateway,
) -> None:
    event = stripe_event("test.kindling_probe", {"id": "probe_1", "object": "probe"})
    await deliver(client, encoded(event), settings.stripe_webhook_secret)
    transaction = transactions(sessions, ListSender())

    await asyncio.gather(*(process_webhook(transaction, gateway, event["id"]) for _ in range(3)))
    await process_webhook(transaction, gateway, event["id"])

    assert probe_calls.count(event["id"]) == 1
    [stored] = await stored_events(sessions)
    assert stored.processed_at is not None


async def test_a_failed_event_is_counted_and_tried_again_by_the_sweep(
    client: httpx.AsyncClient,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    gateway: StripeGateway,
) -> None:
    event = stripe_event("test.kindling_flaky", {"id": "flaky_1", "object": "flaky"})
    failures_left[event["id"]] = 1
    await deliver(client, encoded(event), settings.stripe_webhook_secret)
    transaction = transactions(sessions, ListSender())

    with pytest.raises(RuntimeError):
        await process_webhook(transaction, gateway, event["id"])

    [stored] = await stored_events(sessions)
    assert stored.processed_at is None and stored.attempts == 1
    assert stored.last_error == "RuntimeError: the pledge is locked elsewhere"

    sweep_jobs = ListSender()
    async with unit_of_work(sessions, sweep_jobs) as session:
        assert await requeue_unapplied_webhook_events(session) == 0  # too soon after the failure
    async with sessions.begin() as session:
        await session.execute(update(WebhookEvent).values(received_at=WebhookEvent.received_at - timedelta(minutes=1)))
    async with unit_of_work(sessions, sweep_jobs) as session:
        assert await requeue_unapplied_webhook_events(session) == 1
    assert sweep_jobs.jobs == [Job(PROCESS_WEBHOOK, (event["id"],))]

    await process_webhook(transaction, gateway, event["id"])

    [stored] = await stored_events(sessions)
    assert stored.processed_at is not None
    async with unit_of_work(sessions, sweep_jobs) as session:
        assert await requeue_unapplied_webhook_events(session) == 0


@pytest.fixture
async def served_app(stripe_settings: Settings, engine: AsyncEngine, jobs: ListSender) -> AsyncIterator[str]:
    """The app on a real port, so that localstripe can deliver webhooks to it."""
    async with serving(create_app(stripe_settings, sender=jobs, engine_pool=2)) as base_url:
        yield base_url


async def test_an_event_localstripe_sends_is_received(
    served_app: str,
    stripe_server: EmbeddedStripe,
    gateway: StripeGateway,
    sessions: async_sessionmaker[AsyncSession],
    jobs: ListSender,
) -> None:
    await asyncio.to_thread(
        stripe_server.register_webhook,
        served_app + WEBHOOK,
        events=["customer.created"],
        endpoint_id="kindling-webhook-test",
    )
    customer_id = await gateway.create_customer(user_id=uuid.uuid4(), email="zhu@example.com", name="Zhu")

    deadline = time.monotonic() + 60  # localstripe sends about a second after the event
    while not (found := [e for e in await stored_events(sessions) if e.object_id == customer_id]):
        assert time.monotonic() < deadline, "localstripe's webhook never arrived"
        await asyncio.sleep(0.1)

    [stored] = found
    assert stored.type == "customer.created"
    assert Job(PROCESS_WEBHOOK, (stored.id,)) in jobs.jobs
