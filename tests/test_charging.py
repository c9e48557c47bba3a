"""Charging at the deadline: every active pledge exactly once, failed cards retried with a new one, crashes and
Stripe's slow-downs survived; one campaign run end to end by a real worker process."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from campaigns.models import Campaign, Mail, Pledge, Tier
from payments.charging import CHARGE_PLEDGE, ChargeDeferred, charge_pledges, next_charge_call
from payments.closing import REMOVE_CARD
from payments.gateway import ChargeResult, StripeGateway
from payments.ledger import EscrowShort
from payments.models import ChargeAttempt, Milestone
from payments.rate_limit import StripeRateLimit
from payments.stripe_jobs import CHARGING_PLEDGE, held_exclusively
from service.app import create_app
from service.broker import ListSender
from service.devservices import EmbeddedStripe
from service.settings import Settings, environment_of
from tests.factories import address
from tests.helpers import (
    CARD_DECLINED_AT_CHARGE,
    CARD_NEEDS_AUTHENTICATION,
    CARD_OK,
    Actor,
    launched_campaign,
    serving,
    sign_up,
    stripe_event,
    stripe_object,
    stripe_signature,
)
from tests.money_helpers import (
    Backing,
    GatewayAfterCharge,
    back_campaign,
    mail_kinds,
    mails_of,
    pass_deadline,
    payment_intents,
    pledge_row,
    pledge_with_card,
    run_jobs,
    save_card,
    stripe_work,
    sweep,
)

KINDLING = str(Path(sys.executable).parent / "kindling")
PAIR = 34_900 + 1_000  # the "Pair" tier shipped to CN


async def closed_successful(
    client: httpx.AsyncClient,
    stripe: EmbeddedStripe,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    jobs: ListSender,
    cards: list[str],
) -> tuple[dict[str, Any], Actor, list[Backing]]:
    """A campaign backed with `cards` (its goal reached by the first), closed successful by the sweep; its charge
    jobs are waiting in `jobs`. Returns the campaign, its maker and the backings."""
    campaign, maker, _operator = await launched_campaign(client, sessions, goal=PAIR)
    backings = await back_campaign(client, stripe, sessions, campaign, cards)
    await pass_deadline(sessions, campaign["id"])
    found = await sweep(sessions, settings, jobs)
    assert found["close-campaigns"] == 1
    return campaign, maker, backings


async def campaign_status(sessions: async_sessionmaker[AsyncSession], campaign_id: str) -> str:
    async with sessions() as session:
        return str(await session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)))


async def test_a_declined_card_errors_the_pledge_and_a_new_card_collects_it(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, maker, (good, bad) = await closed_successful(
        stripe_client, stripe_server, sessions, stripe_settings, jobs, [CARD_OK, CARD_DECLINED_AT_CHARGE]
    )
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)

        assert (await pledge_row(sessions, good.id)).status == "collected"
        errored = await pledge_row(sessions, bad.id)
        assert errored.status == "errored" and errored.retry_until is not None
        assert await campaign_status(sessions, campaign["id"]) == "successful", "it waits on the errored pledge"
        [failed_mail] = [m for m in await mails_of(sessions, "charge_failed") if m.to_address == bad.backer.email]
        assert failed_mail.facts["path"] == f"/me/pledges/{bad.id}"
        assert failed_mail.facts["reason"] == "card_declined"
        assert "pledge_charged" in await mail_kinds(sessions, good.backer.email)

        # Confirming again with the old card changes nothing; the backer asks for a new card set-up.
        same = await stripe_client.post(f"/api/v1/pledges/{bad.id}/confirm", headers=bad.backer.headers)
        assert same.status_code == 200 and same.json()["status"] == "errored"
        await run_jobs(work, jobs)
        assert len(await payment_intents(stripe_server, pledge_id=bad.id)) == 1

        first_setup = errored.setup_intent_id
        asked = await stripe_client.post(f"/api/v1/pledges/{bad.id}/payment-method", headers=bad.backer.headers)
        assert asked.status_code == 200, asked.text
        payment = asked.json()["payment"]
        assert payment["client_secret"].startswith(payment["setup_intent_id"])
        assert payment["setup_intent_id"] != first_setup
        new_setup = await stripe_object(stripe_server, f"/v1/setup_intents/{payment['setup_intent_id']}")
        assert new_setup["metadata"] == {"pledge_id": bad.id, "attempt": "2"}
        early = await stripe_client.post(f"/api/v1/pledges/{bad.id}/confirm", headers=bad.backer.headers)
        assert early.status_code == 409 and early.json()["type"] == "card-not-saved"

        await save_card(stripe_server, payment["client_secret"], CARD_OK)
        confirmed = await stripe_client.post(f"/api/v1/pledges/{bad.id}/confirm", headers=bad.backer.headers)
        assert confirmed.status_code == 200 and confirmed.json()["status"] == "errored"  # the job charges it
        assert [job.args for job in jobs.jobs if job.actor_name == CHARGE_PLEDGE] == [(bad.id,)]
        await run_jobs(work, jobs)

    shown = (await stripe_client.get(f"/api/v1/pledges/{bad.id}", headers=bad.backer.headers)).json()
    assert shown["status"] == "collected" and shown["charged_at"] is not None and shown["payment"] is None
    intents = await payment_intents(stripe_server, pledge_id=bad.id)
    assert sorted((pi["metadata"]["attempt"], pi["status"]) for pi in intents) == [
        ("1", "requires_payment_method"),
        ("2", "succeeded"),
    ]
    assert [pi["status"] for pi in await payment_intents(stripe_server, pledge_id=good.id)] == ["succeeded"]
    assert await campaign_status(sessions, campaign["id"]) == "funded"
    ledger = (await stripe_client.get(f"/api/v1/campaigns/{campaign['id']}/ledger", headers=maker.headers)).json()
    assert ledger["collected"] == 2 * PAIR


async def test_a_new_card_reported_only_by_stripes_webhook_is_charged_at_once(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    """The backer saves a new card and closes the tab before our confirm: setup_intent.succeeded retries the charge."""
    campaign, _maker, (_good, bad) = await closed_successful(
        stripe_client, stripe_server, sessions, stripe_settings, jobs, [CARD_OK, CARD_DECLINED_AT_CHARGE]
    )
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
        assert (await pledge_row(sessions, bad.id)).status == "errored"
        asked = await stripe_client.post(f"/api/v1/pledges/{bad.id}/payment-method", headers=bad.backer.headers)
        setup = asked.json()["payment"]
        await save_card(stripe_server, setup["client_secret"], CARD_OK)

        intent = await stripe_object(stripe_server, f"/v1/setup_intents/{setup['setup_intent_id']}")
        payload = json.dumps(stripe_event("setup_intent.succeeded", intent)).encode()
        signature = stripe_signature(payload, stripe_settings.stripe_webhook_secret)
        delivered = await stripe_client.post(
            "/api/v1/webhooks/stripe",
            content=payload,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        )
        assert delivered.status_code == 200
        await run_jobs(work, jobs)  # the webhook's job, then the charge it asks for
        await run_jobs(work, jobs)  # delivered twice: nothing more happens

    assert (await pledge_row(sessions, bad.id)).status == "collected"
    intents = await payment_intents(stripe_server, pledge_id=bad.id)
    assert sorted(pi["status"] for pi in intents) == ["requires_payment_method", "succeeded"]
    assert await campaign_status(sessions, campaign["id"]) == "funded"


async def test_a_charge_the_bank_wants_authenticated_errors_the_pledge_with_that_reason(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    _campaign, _maker, (backing,) = await closed_successful(
        stripe_client, stripe_server, sessions, stripe_settings, jobs, [CARD_NEEDS_AUTHENTICATION]
    )
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        assert [outcome for _actor, outcome in await run_jobs(work, jobs)] == ["failed"]

    assert (await pledge_row(sessions, backing.id)).status == "errored"
    [mail] = await mails_of(sessions, "charge_failed")
    assert mail.facts["reason"] == "authentication_required"
    async with sessions() as session:
        attempt = await session.scalar(select(ChargeAttempt).where(ChargeAttempt.pledge_id == backing.id))
    assert attempt is not None and attempt.status == "failed" and attempt.payment_intent_id is not None


async def test_an_attempt_left_started_by_a_crash_is_resolved_without_a_second_payment_intent(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, (charged, unsent) = await closed_successful(
        stripe_client, stripe_server, sessions, stripe_settings, jobs, [CARD_OK, CARD_OK]
    )
    jobs.jobs.clear()  # the messages died with the worker
    # A worker recorded both attempts, reached Stripe for the first only, and died before recording anything more.
    async with sessions.begin() as session:
        first = await next_charge_call(session, uuid.UUID(charged.id))
        second = await next_charge_call(session, uuid.UUID(unsent.id))
    assert first is not None and second is not None and first.attempt == second.attempt == 1
    await gateway.charge_off_session(
        pledge_id=first.pledge_id,
        attempt=first.attempt,
        amount=first.amount,
        currency=first.currency,
        customer_id=first.customer_id,
        payment_method_id=first.payment_method_id,
    )

    async with sessions.begin() as session:  # later: the sweep's patience with a lost message has run out
        await session.execute(
            update(Pledge).values(payment_job_requested_at=func.now() - func.make_interval(0, 0, 0, 0, 1))
        )
    found = await sweep(sessions, stripe_settings, jobs)
    assert found["charges"] == 2
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)

    for backing in (charged, unsent):
        intents = await payment_intents(stripe_server, pledge_id=backing.id)
        assert [(pi["metadata"]["attempt"], pi["status"]) for pi in intents] == [("1", "succeeded")]
        assert (await pledge_row(sessions, backing.id)).status == "collected"
    async with sessions() as session:
        attempts = list(await session.scalars(select(ChargeAttempt).order_by(ChargeAttempt.created_at)))
    assert [(a.attempt, a.status) for a in attempts] == [(1, "succeeded"), (1, "succeeded")]
    assert await campaign_status(sessions, campaign["id"]) == "funded"


async def test_a_retry_with_a_new_card_that_died_before_reaching_stripe_is_sent_again_under_its_own_number(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, (backing,) = await closed_successful(
        stripe_client, stripe_server, sessions, stripe_settings, jobs, [CARD_DECLINED_AT_CHARGE]
    )
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
        asked = await stripe_client.post(f"/api/v1/pledges/{backing.id}/payment-method", headers=backing.backer.headers)
        await save_card(stripe_server, asked.json()["payment"]["client_secret"], CARD_OK)
        confirmed = await stripe_client.post(f"/api/v1/pledges/{backing.id}/confirm", headers=backing.backer.headers)
        assert confirmed.status_code == 200
        jobs.jobs.clear()  # the worker took the job, recorded attempt 2, and died before calling Stripe
        async with sessions.begin() as session:
            retry = await next_charge_call(session, uuid.UUID(backing.id))
        assert retry is not None and retry.attempt == 2 and not retry.in_doubt

        async with sessions.begin() as session:
            await session.execute(update(Pledge).values(payment_job_requested_at=None))
        assert (await sweep(sessions, stripe_settings, jobs))["charges"] == 1
        await run_jobs(work, jobs)

    intents = await payment_intents(stripe_server, pledge_id=backing.id)
    assert sorted((pi["metadata"]["attempt"], pi["status"]) for pi in intents) == [
        ("1", "requires_payment_method"),
        ("2", "succeeded"),
    ]
    assert (await pledge_row(sessions, backing.id)).status == "collected"
    assert await campaign_status(sessions, campaign["id"]) == "funded"


@pytest.fixture
async def busy_stripe() -> AsyncIterator[str]:
    """A server in Stripe's place that answers every request 429 (Stripe asking us to slow down)."""

    async def slow_down(request: Request) -> JSONResponse:
        return JSONResponse({"error": {"type": "rate_limit_error", "message": "Too many requests"}}, status_code=429)

    app = Starlette(routes=[Route("/{path:path}", slow_down, methods=["GET", "POST", "DELETE"])])
    async with serving(app, lifespan="off") as api_base:
        yield api_base


async def test_stripe_slowing_us_down_defers_the_charge_which_later_goes_through_once(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
    busy_stripe: str,
) -> None:
    _campaign, _maker, (backing,) = await closed_successful(
        stripe_client, stripe_server, sessions, stripe_settings, jobs, [CARD_OK]
    )
    busy = StripeGateway(
        secret_key="sk_test_x", publishable_key="pk_test_x", webhook_secret="whsec_x", api_base=busy_stripe,
        max_network_retries=0,
    )  # fmt: skip
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        with pytest.raises(ChargeDeferred):
            await charge_pledges(replace(work, gateway=busy), backing.id)
        async with sessions() as session:
            attempt = await session.scalar(select(ChargeAttempt).where(ChargeAttempt.pledge_id == backing.id))
        assert attempt is not None and (attempt.status, attempt.failure_code) == ("unknown", "payment-provider-busy")

        # Dramatiq's retry: the attempt in doubt is looked for at Stripe first, then sent once.
        assert await charge_pledges(work, backing.id) == ["succeeded"]
        assert await charge_pledges(work, backing.id) == ["nothing"]
    await busy.aclose()
    assert len(await payment_intents(stripe_server, pledge_id=backing.id)) == 1
    assert (await pledge_row(sessions, backing.id)).status == "collected"


async def test_one_job_charges_a_batch_of_pledges_and_answers_for_each(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, (first, declined, held, last) = await closed_successful(
        stripe_client,
        stripe_server,
        sessions,
        stripe_settings,
        jobs,
        [CARD_OK, CARD_DECLINED_AT_CHARGE, CARD_OK, CARD_OK],
    )
    [asked] = [job.args for job in jobs.jobs if job.actor_name == CHARGE_PLEDGE]
    assert sorted(asked) == sorted(b.id for b in (first, declined, held, last))  # one job for the four
    jobs.jobs.clear()
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        async with held_exclusively(engine, CHARGING_PLEDGE, uuid.UUID(held.id)) as mine:  # another job's pledge
            assert mine
            answers = await charge_pledges(work, first.id, declined.id, held.id, "not-a-pledge", first.id)
        assert answers == ["succeeded", "failed", "busy", "nothing", "succeeded"]
        assert await campaign_status(sessions, campaign["id"]) == "successful"

        assert await charge_pledges(work, held.id, last.id, first.id) == ["succeeded", "succeeded", "nothing"]
    statuses = {b.id: (await pledge_row(sessions, b.id)).status for b in (first, declined, held, last)}
    assert statuses == {first.id: "collected", declined.id: "errored", held.id: "collected", last.id: "collected"}
    for backing in (first, declined, held, last):
        assert len(await payment_intents(stripe_server, pledge_id=backing.id)) == 1
    assert "charge_failed" in await mail_kinds(sessions, declined.backer.email)
    assert await campaign_status(sessions, campaign["id"]) == "successful", "it waits on the errored pledge"


async def test_the_last_two_batches_recorded_at_once_fund_the_campaign_without_waiting_for_the_sweep(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    """Outcomes are recorded under a share lock on the campaign, so two recorded at once each see the other still
    waiting. Here one job's outcome transaction is held open until the other job has finished: the one that
    commits last funds the campaign."""
    campaign, _maker, (earliest, first, last) = await closed_successful(
        stripe_client, stripe_server, sessions, stripe_settings, jobs, [CARD_OK, CARD_OK, CARD_OK]
    )
    jobs.jobs.clear()
    recorded, go_on = asyncio.Event(), asyncio.Event()
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        # The campaign's ledger accounts are opened by its first collection (which a second would wait for).
        assert await charge_pledges(work, earliest.id) == ["succeeded"]
        opened = 0

        @asynccontextmanager
        async def held_before_commit() -> AsyncIterator[AsyncSession]:
            nonlocal opened
            opened += 1
            async with work.transaction() as session:
                yield session
                if opened == 2:  # the outcome's transaction (the first decides the call)
                    recorded.set()
                    await go_on.wait()

        held = asyncio.create_task(charge_pledges(replace(work, transaction=held_before_commit), last.id))
        await asyncio.wait_for(recorded.wait(), timeout=30)
        assert await charge_pledges(work, first.id) == ["succeeded"]
        assert await campaign_status(sessions, campaign["id"]) == "successful", "it saw the other still waiting"
        go_on.set()
        assert await held == ["succeeded"]

    assert await campaign_status(sessions, campaign["id"]) == "funded"
    assert (await sweep(sessions, stripe_settings, jobs))["funded-campaigns"] == 0


async def test_an_outcome_that_cannot_be_recorded_leaves_the_rest_of_its_batch_recorded(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, backings = await closed_successful(
        stripe_client, stripe_server, sessions, stripe_settings, jobs, [CARD_OK, CARD_OK, CARD_OK]
    )
    jobs.jobs.clear()
    poisoned = backings[1]
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:

        async def refunded_ten_times_over(call: dict[str, Any], charge: ChargeResult) -> ChargeResult:
            # Booking that refund finds escrow short: this one outcome cannot be recorded.
            if str(call["pledge_id"]) == poisoned.id:
                return replace(charge, amount_refunded=charge.amount * 10)
            return charge

        misreporting = replace(work, gateway=GatewayAfterCharge(gateway, refunded_ten_times_over))
        with pytest.raises(EscrowShort):
            await charge_pledges(misreporting, *(b.id for b in backings))
        statuses = [(await pledge_row(sessions, b.id)).status for b in backings]
        assert statuses == ["collected", "active", "collected"]
        async with sessions() as session:
            attempt = await session.scalar(select(ChargeAttempt).where(ChargeAttempt.pledge_id == poisoned.id))
        assert attempt is not None and attempt.status == "started"  # in doubt: the sweep asks again

        # The retry finds the PaymentIntent at Stripe (not refunded at all) and sends nothing more.
        assert await charge_pledges(work, *(b.id for b in backings)) == ["nothing", "succeeded", "nothing"]
    assert len(await payment_intents(stripe_server, pledge_id=poisoned.id)) == 1
    assert await campaign_status(sessions, campaign["id"]) == "funded"


async def test_an_errored_pledge_is_reminded_once_then_dropped_and_its_slot_freed(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    stripe_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: StripeGateway,
    jobs: ListSender,
) -> None:
    campaign, _maker, _operator = await launched_campaign(stripe_client, sessions, goal=PAIR, limited_quantity=2)
    [good] = await back_campaign(stripe_client, stripe_server, sessions, campaign, [CARD_OK])
    backer = await sign_up(stripe_client, "Early")
    early = await pledge_with_card(stripe_client, stripe_server, backer, campaign, tier=0, card=CARD_DECLINED_AT_CHARGE)
    await pass_deadline(sessions, campaign["id"])
    await sweep(sessions, stripe_settings, jobs)
    async with stripe_work(sessions, engine, gateway, stripe_settings, jobs) as work:
        await run_jobs(work, jobs)
        assert (await pledge_row(sessions, early["id"])).status == "errored"

        day = stripe_settings.day_seconds
        async with sessions.begin() as session:  # the window ends in half a day
            await session.execute(
                update(Pledge)
                .where(Pledge.id == early["id"])
                .values(retry_until=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, day // 2))
            )
        assert (await sweep(sessions, stripe_settings, jobs))["charge-reminders"] == 1
        assert (await sweep(sessions, stripe_settings, jobs))["charge-reminders"] == 0
        [reminder] = await mails_of(sessions, "charge_retry_reminder")
        assert reminder.to_address == backer.email and reminder.facts["path"] == f"/me/pledges/{early['id']}"

        async with sessions.begin() as session:  # and now it has ended
            await session.execute(
                update(Pledge)
                .where(Pledge.id == early["id"])
                .values(retry_until=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1))
            )
        found = await sweep(sessions, stripe_settings, jobs)
        assert found["dropped-pledges"] == 1 and found["funded-campaigns"] == 1
        assert REMOVE_CARD in [job.actor_name for job in jobs.jobs]
        await run_jobs(work, jobs)

    dropped = await pledge_row(sessions, early["id"])
    assert dropped.status == "dropped" and dropped.payment_method_id is None
    assert "pledge_dropped" in await mail_kinds(sessions, backer.email)
    async with sessions() as session:
        tier = await session.get_one(Tier, uuid.UUID(campaign["tiers"][0]["id"]))
        milestones = await session.scalar(
            select(func.count()).select_from(Milestone).where(Milestone.campaign_id == campaign["id"])
        )
    assert tier.remaining == 2
    assert await campaign_status(sessions, campaign["id"]) == "funded" and milestones == 3
    assert (await pledge_row(sessions, good.id)).status == "collected"
    # Too late for a new card now.
    refused = await stripe_client.post(f"/api/v1/pledges/{early['id']}/payment-method", headers=backer.headers)
    assert refused.status_code == 409 and refused.json()["type"] == "pledge-not-errored"


async def test_a_new_card_is_only_for_the_backer_of_an_errored_pledge(
    stripe_client: httpx.AsyncClient,
    stripe_server: EmbeddedStripe,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    campaign, maker, operator = await launched_campaign(stripe_client, sessions)
    backer = await sign_up(stripe_client, "Bo")
    active = await pledge_with_card(stripe_client, stripe_server, backer, campaign)
    url = f"/api/v1/pledges/{active['id']}/payment-method"

    assert (await stripe_client.post(url)).status_code == 401
    # Who may see the pledge learns that it is not theirs to pay; anyone else, that there is no such pledge.
    for onlooker in (maker, operator):
        assert (await stripe_client.post(url, headers=onlooker.headers)).status_code == 403
    stranger = await sign_up(stripe_client, "Stranger")
    assert (await stripe_client.post(url, headers=stranger.headers)).status_code == 404
    missing = await stripe_client.post(f"/api/v1/pledges/{uuid.uuid4()}/payment-method", headers=backer.headers)
    assert missing.status_code == 404
    before = (await pledge_row(sessions, active["id"])).setup_intent_id
    not_errored = await stripe_client.post(url, headers=backer.headers)
    assert not_errored.status_code == 409 and not_errored.json()["type"] == "pledge-not-errored"
    assert (await pledge_row(sessions, active["id"])).setup_intent_id == before


async def test_the_rate_limit_is_one_bucket_for_every_process(settings: Settings) -> None:
    key = f"test:rate:{uuid.uuid4()}"
    # Two clients, as two worker processes would have, at 40 calls a second with a burst of 40.
    limits = [StripeRateLimit(Redis.from_url(settings.redis_url), rate=40, key=key) for _ in range(2)]
    started = time.monotonic()
    try:
        await asyncio.gather(*(limits[i % 2].acquire() for i in range(100)))
    finally:
        for limit in limits:
            await limit.aclose()
    elapsed = time.monotonic() - started
    # 40 at once, then 60 more at 40 a second: 1.5 s.
    assert 1.4 <= elapsed < 3.0, elapsed


@pytest.fixture
def quick_settings(stripe_settings: Settings) -> Settings:
    """A campaign day of 6 seconds, a sweep twice a second."""
    return replace(stripe_settings, day_seconds=6, sweep_seconds=0.5)


@pytest.fixture
def money_worker(quick_settings: Settings, engine: AsyncEngine, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            [KINDLING, "worker", "--processes", "1", "--threads", "4"],
            env=environment_of(quick_settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.slow
async def test_a_campaign_runs_from_live_to_funded_by_itself_with_books_that_add_up(
    quick_settings: Settings,
    stripe_server: EmbeddedStripe,
    sessions: async_sessionmaker[AsyncSession],
    money_worker: subprocess.Popen[bytes],
    tmp_path: Path,
) -> None:
    app = create_app(quick_settings, engine_pool=2)  # its jobs go to Redis, for the worker
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50002))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
            campaign, maker, _operator = await launched_campaign(client, sessions, goal=60_000, duration_days=30)
            backings = await back_campaign(
                client, stripe_server, sessions, campaign, [CARD_OK, CARD_OK, CARD_OK], bonuses=[0, 333, 1_001]
            )
            walked_away = backings.pop()
            cancelled = await client.delete(f"/api/v1/pledges/{walked_away.id}", headers=walked_away.backer.headers)
            assert cancelled.status_code == 200
            # The backers are done: the deadline is made to pass (on a busy machine they may take longer than any
            # few campaign days), and the worker takes it from there.
            await pass_deadline(sessions, campaign["id"])

            deadline = time.monotonic() + 120
            status = "live"
            while time.monotonic() < deadline and status != "funded":
                await asyncio.sleep(0.2)
                status = (await client.get(f"/api/v1/campaigns/{campaign['id']}")).json()["status"]
            log = (tmp_path / "worker.log").read_text()
            assert status == "funded", log[-4000:]

            books = (await client.get(f"/api/v1/campaigns/{campaign['id']}/ledger", headers=maker.headers)).json()
            milestones = (
                await client.get(f"/api/v1/campaigns/{campaign['id']}/milestones", headers=maker.headers)
            ).json()
            pledges = [(await client.get(f"/api/v1/pledges/{b.id}", headers=b.backer.headers)).json() for b in backings]
            shipped_to = await fulfil_through_the_api(client, campaign["id"], maker, backings, log_of=tmp_path)

    amounts = [PAIR, PAIR + 333]
    assert [p["status"] for p in pledges] == ["collected", "collected"]
    assert [p["amount"] for p in pledges] == amounts
    for backing in backings:
        assert [pi["status"] for pi in await payment_intents(stripe_server, pledge_id=backing.id)] == ["succeeded"]
    assert await payment_intents(stripe_server, pledge_id=walked_away.id) == []

    platform = sum((a * quick_settings.platform_fee_bps + 5_000) // 10_000 for a in amounts)
    sponsor = sum((a * 300 + 5_000) // 10_000 for a in amounts)
    assert books["collected"] == sum(amounts) and books["pledged"] == sum(amounts)
    assert (books["platform_fee"], books["sponsor_fee"], books["processor_fee"]) == (platform, sponsor, 0)
    assert books["refunded"] == books["released"] == 0
    assert books["escrow_held"] == sum(amounts) - platform - sponsor
    assert (
        books["collected"] - books["refunded"] - books["platform_fee"] - books["sponsor_fee"]
        - books["processor_fee"] - books["released"]
    ) == books["escrow_held"]  # fmt: skip
    assert [m["status"] for m in milestones] == ["pending", "pending", "pending"]
    assert sum(m["amount"] for m in milestones) == books["escrow_held"]

    async with sessions() as session:
        kinds = set(await session.scalars(select(Mail.kind).where(Mail.to_address == backings[0].backer.email)))
        status = await session.scalar(select(Campaign.status).where(Campaign.id == campaign["id"]))
    assert {"campaign_successful", "pledge_charged", "address_survey", "shipped"} <= kinds
    assert shipped_to == {b.id: ("SF Express", f"SF{n}") for n, b in enumerate(backings)}
    assert status == "fulfilled"


async def fulfil_through_the_api(
    client: httpx.AsyncClient, campaign_id: str, maker: Actor, backings: list[Backing], *, log_of: Path
) -> dict[str, tuple[str, str]]:
    """After funding, with the real worker planning: one backer gives an address, the shipping list has that one and
    /unaddressed the other; the second gives theirs, which joins the open batch's list; the maker confirms the batch
    and uploads the tracking file. Returns each pledge's (carrier, tracking number) as GET /pledges shows it."""
    base = f"/api/v1/campaigns/{campaign_id}"
    first, second = backings

    async def until(ready: Callable[[], Awaitable[bool]], what: str) -> None:
        deadline = time.monotonic() + 90
        while not await ready():
            assert time.monotonic() < deadline, f"{what}: " + (log_of / "worker.log").read_text()[-3000:]
            await asyncio.sleep(0.3)

    async def batches() -> list[dict[str, Any]]:
        return list((await client.get(f"{base}/batches", headers=maker.headers)).json())

    async def listed(batch_id: str) -> list[str]:
        answer = await client.get(f"{base}/batches/{batch_id}/shipping-list.csv", headers=maker.headers)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        return [row["pledge_id"] for row in csv.DictReader(io.StringIO(answer.text, newline=""))]

    await until(lambda: _non_empty(batches()), "the worker plans the funded campaign")
    [batch] = await batches()
    assert batch["pledges"] == 2 and batch["status"] == "planned"
    put = await client.put(f"/api/v1/pledges/{first.id}/address", json=address(), headers=first.backer.headers)
    assert put.status_code == 200, put.text
    await until(lambda: _equals(listed(batch["id"]), [first.id]), "a given address joins the shipping list")
    unaddressed = (await client.get(f"{base}/unaddressed", headers=maker.headers)).json()
    assert [p["pledge_id"] for p in unaddressed["items"]] == [second.id]

    put = await client.put(
        f"/api/v1/pledges/{second.id}/address", json=address("US", city="Oakland"), headers=second.backer.headers
    )
    assert put.status_code == 200, put.text
    await until(lambda: _equals(_sorted(listed(batch["id"])), sorted([first.id, second.id])), "the late address")
    confirmed = await client.post(f"{base}/batches/{batch['id']}/confirm", headers=maker.headers)
    assert confirmed.status_code == 200, confirmed.text
    tracking = "pledge_id,carrier,tracking_number\n" + "".join(
        f"{b.id},SF Express,SF{n}\n" for n, b in enumerate(backings)
    )
    shipped = await client.post(
        f"{base}/shipments", content=tracking.encode(), headers={**maker.headers, "Content-Type": "text/csv"}
    )
    assert shipped.status_code == 200 and shipped.json()["campaign_status"] == "fulfilled", shipped.text
    shown = {}
    for b in backings:
        shipment = (await client.get(f"/api/v1/pledges/{b.id}", headers=b.backer.headers)).json()["shipment"]
        shown[b.id] = (shipment["carrier"], shipment["tracking_number"])
    return shown


async def _non_empty(values: Awaitable[list[Any]]) -> bool:
    return bool(await values)


async def _equals(values: Awaitable[list[str]], expected: list[str]) -> bool:
    return await values == expected


async def _sorted(values: Awaitable[list[str]]) -> list[str]:
    return sorted(await values)
