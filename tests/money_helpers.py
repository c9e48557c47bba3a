"""Arrangements the money tests share: backed campaigns on localstripe, their deadline, the sweep, and running the
jobs the app and the sweep asked for with the same functions the worker runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from campaigns.models import Campaign, Mail, Pledge
from campaigns.pledges.models import PledgeItem
from fulfillment.service import PLAN_CAMPAIGN
from fulfillment.tasks import plan_campaign_job
from payments.charging import CHARGE_PLEDGE, charge_pledges
from payments.closing import REMOVE_CARD, remove_saved_card
from payments.gateway import ChargeResult, PaymentGateway, StripeGateway
from payments.rate_limit import StripeRateLimit
from payments.refunds import REFUND, make_refund
from payments.stripe_jobs import StripeWork
from payments.tasks import process_webhook
from payments.webhooks import PROCESS_WEBHOOK
from service.broker import ListSender
from service.database import unit_of_work
from service.devservices import EmbeddedStripe
from service.settings import Settings
from service.sweep import sweep_once
from tests.factories import pledge_lines
from tests.helpers import (
    CARD_OK,
    Actor,
    complete_card_authentication,
    confirm_card_setup,
    many_backers,
    stripe_http,
    stripe_object,
)


@dataclass
class Backing:
    backer: Actor
    pledge: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.pledge["id"])


async def pledge_with_card(
    client: httpx.AsyncClient,
    stripe: EmbeddedStripe,
    backer: Actor,
    campaign: dict[str, Any],
    *,
    tier: int | None = 1,
    bonus: int = 0,
    card: str = CARD_OK,
) -> dict[str, Any]:
    """A pledge through the API with its card saved at localstripe and confirmed: `active`."""
    body: dict[str, Any] = {"tier_id": campaign["tiers"][tier]["id"] if tier is not None else None, "bonus": bonus}
    if tier is not None:
        body["shipping_country"] = "CN"
    created = await client.post(f"/api/v1/campaigns/{campaign['id']}/pledges", json=body, headers=backer.headers)
    assert created.status_code == 201, created.text
    await save_card(stripe, created.json()["payment"]["client_secret"], card)
    confirmed = await client.post(f"/api/v1/pledges/{created.json()['id']}/confirm", headers=backer.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "active"
    return dict(confirmed.json())


async def save_card(stripe: EmbeddedStripe, client_secret: str, card: str = CARD_OK) -> None:
    """The backer's browser saving a card (passing the bank's check when the card asks for one)."""
    saved = await confirm_card_setup(stripe, client_secret, card)
    assert saved.status_code == 200, saved.text
    if saved.json().get("status") == "requires_action":
        assert (await complete_card_authentication(stripe, client_secret)).status_code == 200


async def back_campaign(
    client: httpx.AsyncClient,
    stripe: EmbeddedStripe,
    sessions: async_sessionmaker[AsyncSession],
    campaign: dict[str, Any],
    cards: list[str],
    *,
    bonuses: list[int] | None = None,
) -> list[Backing]:
    """One backer per card, each with an active pledge for the "Pair" tier (349.00 + 10.00 shipping + bonus)."""
    backers = await many_backers(sessions, len(cards))
    backings = []
    for i, (backer, card) in enumerate(zip(backers, cards, strict=True)):
        bonus = bonuses[i] if bonuses else 0
        backings.append(
            Backing(backer, await pledge_with_card(client, stripe, backer, campaign, card=card, bonus=bonus))
        )
    return backings


async def pass_deadline(sessions: async_sessionmaker[AsyncSession], campaign_id: str) -> None:
    """The campaign's deadline is a moment ago."""
    async with sessions.begin() as session:
        await session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(ends_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1))
        )


async def sweep(sessions: async_sessionmaker[AsyncSession], settings: Settings, jobs: ListSender) -> dict[str, int]:
    found = await sweep_once(sessions, jobs, settings)
    assert found is not None
    return found


JobRunner = Callable[[StripeWork, str], Awaitable[Any]]


async def _plan(work: StripeWork, campaign_id: str) -> None:
    await plan_campaign_job(work.transaction, campaign_id, survey_seconds=0)


async def _webhook(work: StripeWork, event_id: str) -> None:
    await process_webhook(work.transaction, work.gateway, event_id)


RUNNERS: dict[str, JobRunner] = {
    CHARGE_PLEDGE: charge_pledges,
    REFUND: make_refund,
    REMOVE_CARD: remove_saved_card,
    PLAN_CAMPAIGN: _plan,
    PROCESS_WEBHOOK: _webhook,
}


async def run_jobs(work: StripeWork, jobs: ListSender, *, twice_at_once: bool = False) -> list[tuple[str, Any]]:
    """Run the money, planning and webhook jobs waiting in `jobs` (and those they ask for) until none is left, with
    the functions the worker's actors call; mail stays queued. `twice_at_once` runs each job twice concurrently, as
    a duplicated message would. Returns (actor, result) pairs."""
    results: list[tuple[str, Any]] = []
    while True:
        runnable = [job for job in jobs.jobs if job.actor_name in RUNNERS]
        if not runnable:
            return results
        jobs.jobs = [job for job in jobs.jobs if job.actor_name not in RUNNERS]
        for job in runnable:
            copies = 2 if twice_at_once else 1
            outcomes = await asyncio.gather(*(RUNNERS[job.actor_name](work, *job.args) for _ in range(copies)))
            for outcome in outcomes:
                # A charge job answers for each pledge of its batch.
                each = outcome if isinstance(outcome, list) else [outcome]
                results.extend((job.actor_name, answer) for answer in each)


@asynccontextmanager
async def stripe_work(
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    gateway: PaymentGateway,
    settings: Settings,
    jobs: ListSender,
) -> AsyncIterator[StripeWork]:
    """What the worker gives its money jobs, with the test's job list and a rate limit of its own."""
    rate_limit = StripeRateLimit(Redis.from_url(settings.redis_url), rate=500, key=f"test:rate:{uuid.uuid4()}")

    def transaction() -> AbstractAsyncContextManager[AsyncSession]:
        return unit_of_work(sessions, jobs)

    try:
        yield StripeWork(
            transaction, engine, gateway, rate_limit, charge_doubt_seconds=settings.charge_doubt_hours * 3600
        )
    finally:
        await rate_limit.aclose()


async def payment_intents(stripe: EmbeddedStripe, **metadata: str) -> list[dict[str, Any]]:
    """Every PaymentIntent localstripe holds whose metadata has these values."""
    found: list[dict[str, Any]] = []
    async with stripe_http(stripe) as http:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100} | ({"starting_after": after} if after else {})
            page = (await http.get("/v1/payment_intents", params=params)).raise_for_status().json()
            found.extend(pi for pi in page["data"] if all(pi["metadata"].get(k) == v for k, v in metadata.items()))
            if not page.get("has_more") or not page["data"]:
                return found
            after = page["data"][-1]["id"]


async def pledge_row(sessions: async_sessionmaker[AsyncSession], pledge_id: str) -> Pledge:
    async with sessions() as session:
        return await session.get_one(Pledge, uuid.UUID(pledge_id))


async def mail_kinds(sessions: async_sessionmaker[AsyncSession], email: str) -> list[str]:
    async with sessions() as session:
        return list(await session.scalars(select(Mail.kind).where(Mail.to_address == email).order_by(Mail.created_at)))


async def mails_of(sessions: async_sessionmaker[AsyncSession], kind: str) -> list[Mail]:
    async with sessions() as session:
        return list(await session.scalars(select(Mail).where(Mail.kind == kind).order_by(Mail.created_at)))


async def amount_refunded_at_stripe(stripe: EmbeddedStripe, pledge_id: str) -> int:
    """What Stripe has refunded of the pledge's one PaymentIntent."""
    [intent] = await payment_intents(stripe, pledge_id=pledge_id)
    charge = intent["latest_charge"]
    if isinstance(charge, str):
        charge = await stripe_object(stripe, f"/v1/charges/{charge}")
    return int(charge["amount_refunded"])


async def active_pledges_in_bulk(
    sessions: async_sessionmaker[AsyncSession],
    stripe: EmbeddedStripe,
    campaign: dict[str, Any],
    backers: list[Actor],
    *,
    tier: int = 1,
    country: str = "CN",
    card: str = CARD_OK,
) -> list[str]:
    """One `active` pledge per backer for the campaign's tier, with what a confirmed pledge leaves behind for the
    charge: the backer's Stripe Customer and a card saved at localstripe and attached to it. The Stripe objects
    are made through localstripe's API; the rows are written straight to the database (hundreds of pledges through
    the API would take minutes). Returns the pledge ids, in pledge order."""
    from sqlalchemy import insert

    from campaigns.models import Tier, new_id
    from payments.models import StripeCustomer

    chosen = campaign["tiers"][tier]
    fee = next(
        (row["fee"] for row in chosen["shipping"] if row["country"] == country),
        next((row["fee"] for row in chosen["shipping"] if row["country"] == "*"), 0),
    )
    room = asyncio.Semaphore(8)
    async with stripe_http(stripe, timeout=30) as http:

        async def saved_card(backer: Actor) -> tuple[str, str]:
            async with room:
                customer = await http.post(
                    "/v1/customers", data={"email": backer.email, "metadata[user_id]": backer.id}
                )
                method = await http.post(
                    "/v1/payment_methods",
                    data={
                        "type": "card",
                        "card[number]": card,
                        "card[exp_month]": "12",
                        "card[exp_year]": "2030",
                        "card[cvc]": "123",
                    },
                )
                customer_id = customer.raise_for_status().json()["id"]
                method_id = method.raise_for_status().json()["id"]
                attached = await http.post(f"/v1/payment_methods/{method_id}/attach", data={"customer": customer_id})
                attached.raise_for_status()
            return customer_id, method_id

        cards = await asyncio.gather(*(saved_card(backer) for backer in backers))
    pledges = [
        {
            "id": new_id(),
            "campaign_id": uuid.UUID(campaign["id"]),
            "backer_id": uuid.UUID(backer.id),
            "tier_id": uuid.UUID(chosen["id"]),
            "status": "active",
            "amount": chosen["price"] + fee,
            "shipping_fee": fee,
            "shipping_country": country,
            "currency": campaign["currency"],
            "payment_method_id": method_id,
            "confirmed_at": func.now(),
        }
        for backer, (_customer_id, method_id) in zip(backers, cards, strict=True)
    ]
    async with sessions.begin() as session:
        await session.execute(
            insert(StripeCustomer),
            [
                {"user_id": uuid.UUID(backer.id), "customer_id": customer_id}
                for backer, (customer_id, _method_id) in zip(backers, cards, strict=True)
            ],
        )
        for pledge in pledges:  # one at a time, so that `number` follows the list
            await session.execute(insert(Pledge).values(pledge))
        await session.execute(
            insert(PledgeItem),
            [
                line
                for pledge in pledges
                for line in pledge_lines(pledge["id"], pledge["tier_id"], chosen["price"], shipping_fee=fee)
            ],
        )
        if chosen["quantity_limit"] is not None:
            await session.execute(
                update(Tier).where(Tier.id == chosen["id"]).values(remaining=Tier.remaining - len(pledges))
            )
    return [str(pledge["id"]) for pledge in pledges]


@dataclass
class GatewayAfterCharge:
    """The real gateway, with `after` run on each charge it makes, given the call's arguments and Stripe's answer:
    it may change what is reported, or act (say, as an operator) while the job is between its calls."""

    real: StripeGateway
    after: Callable[[dict[str, Any], ChargeResult], Awaitable[ChargeResult]]

    async def charge_off_session(self, **call: Any) -> ChargeResult:
        return await self.after(call, await self.real.charge_off_session(**call))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
