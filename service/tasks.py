"""The service's Dramatiq actors, and what every actor of a worker process shares.

Imported only by the worker (service.worker.setup_broker), after the broker is configured: `@dramatiq.actor` binds to
the broker that is current at import time. Actors are async and run on the event loop thread of Dramatiq's AsyncIO
middleware; the database engine is made lazily, on that loop, by the first actor that needs it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import dramatiq
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.notifications import DELIVER_MAIL
from campaigns.talk.messages import SEND_BROADCAST, send_broadcast_batch
from campaigns.update_mail import FAN_OUT_UPDATE, SEND_UPDATE_MAILS, fan_out_update
from fulfillment.service import PLAN_CAMPAIGN
from fulfillment.tasks import plan_campaign_job
from payments.add_on_charges import SETTLE_ADD_ON_CHARGE, settle_add_on_charge_job
from payments.charging import CHARGE_PLEDGE, charge_pledges
from payments.closing import REMOVE_CARD, remove_saved_card
from payments.gateway import StripeGateway
from payments.rate_limit import StripeRateLimit
from payments.refunds import REFUND, make_refund
from payments.stripe_jobs import StripeWork
from payments.tasks import process_webhook
from payments.webhooks import PROCESS_WEBHOOK
from service.broker import MAIL_QUEUE, QUEUE, DramatiqSender
from service.database import create_engine, create_sessionmaker, unit_of_work
from service.mail import deliver_mail, send_update_mails
from service.settings import Settings, load_settings


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    sender: DramatiqSender
    gateway: StripeGateway
    # KINDLING_STRIPE_RATE, shared with every other worker process through Redis.
    stripe_rate: StripeRateLimit


_context: WorkerContext | None = None


def worker_context() -> WorkerContext:
    """Settings, sessions and the job sender of this worker process, made on first use inside its event loop."""
    global _context
    if _context is None:
        settings = load_settings()
        # A charge or refund job holds two connections: its advisory lock's and its transaction's.
        engine = create_engine(settings.database_url, pool_size=10, max_overflow=10, pre_ping=False)
        _context = WorkerContext(
            settings=settings,
            engine=engine,
            sessions=create_sessionmaker(engine),
            sender=DramatiqSender(dramatiq.get_broker()),
            gateway=StripeGateway.from_settings(settings),
            stripe_rate=StripeRateLimit(Redis.from_url(settings.redis_url), rate=settings.stripe_rate),
        )
    return _context


@asynccontextmanager
async def job_unit_of_work() -> AsyncIterator[AsyncSession]:
    """An actor's one transaction: commits when the block ends cleanly, then sends the jobs it asked for."""
    context = worker_context()
    async with unit_of_work(context.sessions, context.sender) as session:
        yield session


# No Dramatiq retries: a failed delivery is counted on the mail row and the sweep sends it again later.
@dramatiq.actor(actor_name=DELIVER_MAIL, queue_name=MAIL_QUEUE, max_retries=0)
async def deliver_mail_job(mail_id: str) -> None:
    context = worker_context()
    await deliver_mail(context.sessions, context.settings, mail_id)


# A broadcast's batches are idempotent (its row lock, one message per conversation); the sweep re-finds a lost one.
@dramatiq.actor(actor_name=SEND_BROADCAST, queue_name=QUEUE, max_retries=3)
async def send_broadcast_actor(broadcast_id: str) -> None:
    async with job_unit_of_work() as session:
        await send_broadcast_batch(session, broadcast_id, base_url=worker_context().settings.base_url)


# Idempotent (the update's mailed_at is claimed in the job's transaction); a retry after a failure is safe.
@dramatiq.actor(actor_name=FAN_OUT_UPDATE, queue_name=MAIL_QUEUE, max_retries=3)
async def fan_out_update_job(update_id: str) -> None:
    async with job_unit_of_work() as session:
        await fan_out_update(session, update_id, base_url=worker_context().settings.base_url)


# No Dramatiq retries: a failed send is counted on the mail rows and the sweep asks for this job again later.
@dramatiq.actor(actor_name=SEND_UPDATE_MAILS, queue_name=MAIL_QUEUE, max_retries=0, time_limit=6 * 3600 * 1000)
async def send_update_mails_job(update_id: str) -> None:
    context = worker_context()
    await send_update_mails(context.sessions, context.settings, update_id)


# Failures are counted on the event row; the sweep offers the event again with a growing delay.
@dramatiq.actor(actor_name=PROCESS_WEBHOOK, queue_name=QUEUE, max_retries=0)
async def process_webhook_job(event_id: str) -> None:
    context = worker_context()
    await process_webhook(job_unit_of_work, context.gateway, event_id)


# Planning is idempotent: a retry after a failure (a deadlock, a lost connection) is safe; the sweep finds the rest.
@dramatiq.actor(actor_name=PLAN_CAMPAIGN, queue_name=QUEUE, max_retries=3)
async def plan_campaign_actor(campaign_id: str) -> None:
    await plan_campaign_job(
        job_unit_of_work, campaign_id, survey_seconds=worker_context().settings.address_survey_seconds
    )


def stripe_work() -> StripeWork:
    context = worker_context()
    return StripeWork(
        job_unit_of_work,
        context.engine,
        context.gateway,
        context.stripe_rate,
        charge_doubt_seconds=context.settings.charge_doubt_hours * 3600,
    )


# Charging, refunding and removing cards are idempotent and driven by the database. When Stripe is unavailable or
# slows us down the job raises (ChargeDeferred, RefundDeferred, GatewayUnavailable) and Dramatiq retries it with a
# growing back-off; the sweep asks again for whatever is still due after that.
STRIPE_JOB: dict[str, Any] = {"queue_name": QUEUE, "max_retries": 8, "min_backoff": 2_000, "max_backoff": 300_000}


@dramatiq.actor(actor_name=CHARGE_PLEDGE, **STRIPE_JOB)
async def charge_pledges_actor(*pledge_ids: str) -> None:
    await charge_pledges(stripe_work(), *pledge_ids)


@dramatiq.actor(actor_name=SETTLE_ADD_ON_CHARGE, **STRIPE_JOB)
async def settle_add_on_charge_actor(charge_id: str) -> None:
    await settle_add_on_charge_job(stripe_work(), charge_id)


@dramatiq.actor(actor_name=REFUND, **STRIPE_JOB)
async def refund_actor(refund_id: str) -> None:
    await make_refund(stripe_work(), refund_id)


@dramatiq.actor(actor_name=REMOVE_CARD, **(STRIPE_JOB | {"max_retries": 5, "min_backoff": 5_000}))
async def remove_card_actor(pledge_id: str) -> None:
    await remove_saved_card(stripe_work(), pledge_id)
